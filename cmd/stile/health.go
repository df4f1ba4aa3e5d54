package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// healthCommand is `stile health`: a readiness probe that needs no shell
// and no curl, so a distroless image can run it as its HEALTHCHECK. It
// exits 0 when the URL answers 200 and 1 otherwise, with one line saying
// why (the container engine keeps that line in its health log).
func (c *cli) healthCommand() *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check that a running stile is ready (exit 0 on 200 from /readyz, 1 otherwise)",
		Long: "Ask a running stile whether it is ready, as a container health check does: exit 0 when\n" +
			"the URL answers 200, and 1 with the reason otherwise. The default URL is /readyz on\n" +
			"127.0.0.1 at the port of STILE_LISTEN (8080 when unset).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				url = "http://" + net.JoinHostPort("127.0.0.1", listenPort(c.getenv("STILE_LISTEN"))) + "/readyz"
			}
			msg, err := checkHealth(cmd.Context(), url, timeout)
			if err != nil {
				return fmt.Errorf("not healthy: %w", err)
			}
			fmt.Fprintln(c.stdout, msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "the URL to check (default http://127.0.0.1:PORT/readyz, PORT from STILE_LISTEN)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	return cmd
}

// listenPort is the port of a --listen address (":8080", "0.0.0.0:9090"),
// or 8080 when it names none.
func listenPort(listen string) string {
	if _, port, err := net.SplitHostPort(listen); err == nil && port != "" {
		return port
	}
	return "8080"
}

// checkHealth GETs url once. Only a 200 is healthy: a redirect is not
// followed (a probe that lands on a login page is not a ready server), and
// no proxy from the environment is used, since the probe means this host.
func checkHealth(ctx context.Context, url string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("--url %q: %w", url, err)
	}
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("%s did not answer within %s", url, timeout)
		}
		return "", fmt.Errorf("%s: %w", url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	line := firstLine(resp.Body)
	if resp.StatusCode != http.StatusOK {
		if line != "" {
			return "", fmt.Errorf("%s answered %s: %s", url, resp.Status, line)
		}
		return "", fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return fmt.Sprintf("%s: %s", url, resp.Status), nil
}

// firstLine is the first line of a response body, short enough for a
// health log.
func firstLine(r io.Reader) string {
	s := bufio.NewScanner(io.LimitReader(r, 4096))
	if !s.Scan() {
		return ""
	}
	line := strings.TrimSpace(s.Text())
	if len(line) > 200 {
		line = line[:200] + "…"
	}
	return line
}

// unwrapURLError drops the `Get "URL":` prefix that *url.Error adds, as
// the message already names the URL.
func unwrapURLError(err error) error {
	if ue, ok := errors.AsType[*neturl.Error](err); ok {
		return ue.Err
	}
	return err
}
