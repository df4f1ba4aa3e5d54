package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/spf13/pflag"
)

// sideOptions are serve's flags for the listeners beside the main one.
type sideOptions struct {
	metricsListen string // "": /metrics on the main listener
	debugListen   string // "": no pprof at all
}

func (o *sideOptions) register(f *pflag.FlagSet) {
	envFlag(f, &o.metricsListen, "metrics-listen", "", "STILE_METRICS_LISTEN",
		"serve /metrics only on this address (e.g. 127.0.0.1:9090) instead of on --listen")
	envFlag(f, &o.debugListen, "debug-listen", "", "STILE_DEBUG_LISTEN",
		"serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060); empty: off")
}

// validate refuses a debug address that is not loopback: pprof hands out
// heap profiles, which hold whatever the process holds — keys, tokens,
// passwords being checked — to anyone who can reach it.
func (o *sideOptions) validate() error {
	if o.debugListen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(o.debugListen)
	if err != nil {
		return fmt.Errorf("--debug-listen %q: %w", o.debugListen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errDebugNotLoopback(o.debugListen)
	}
	return nil
}

func errDebugNotLoopback(addr string) error {
	return fmt.Errorf("--debug-listen %s: pprof exposes the process's memory, so it listens only on a loopback address "+
		"such as 127.0.0.1:6060 or [::1]:6060; reach it from elsewhere through an SSH tunnel", addr)
}

// listenSide starts the metrics and debug listeners that are configured
// and returns what closes them.
func (o *sideOptions) listenSide(metrics http.Handler, log *slog.Logger) (func(), error) {
	var servers []*http.Server
	closeAll := func() {
		for _, s := range servers {
			s.Close()
		}
	}
	for _, side := range []struct {
		flag, addr string
		handler    http.Handler
		loopback   bool
	}{
		{"--metrics-listen", o.metricsListen, metricsMux(metrics), false},
		{"--debug-listen", o.debugListen, debugMux(), true},
	} {
		if side.addr == "" {
			continue
		}
		s, err := serveSide(side.flag, side.addr, side.handler, side.loopback, log)
		if err != nil {
			closeAll()
			return nil, err
		}
		servers = append(servers, s)
	}
	return closeAll, nil
}

// serveSide listens on addr and serves h there. A loopback-only listener
// checks the address it got, so a host name that resolves elsewhere is
// refused too.
func serveSide(flag, addr string, h http.Handler, loopback bool, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); loopback && (!ok || !tcp.IP.IsLoopback()) {
		ln.Close()
		return nil, errDebugNotLoopback(addr)
	}
	// No write timeout: a CPU profile or a trace streams for as long as it
	// was asked to run.
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("side listener stopped", "flag", flag, "err", err)
		}
	}()
	log.Info("side listener is listening", "flag", flag, "address", ln.Addr().String())
	return s, nil
}

func metricsMux(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	return mux
}

// debugMux serves net/http/pprof's handlers. (Importing the package also
// registers them on http.DefaultServeMux, which stile never serves.)
func debugMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
