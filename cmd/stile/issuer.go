package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
)

// demoListen is where --demo listens unless told otherwise: the demo
// prints its password, so only this machine can reach it.
const demoListen = "127.0.0.1:8080"

// settle completes serve's options as serve and config check see them —
// the demo's loopback address, the issuer derived from --listen — and
// checks everything: the values the environment and the config file could
// not set, and every check of validate, all listed at once. It returns the
// warnings of a configuration that works but looks wrong.
func (c *cli) settle(o *serveOptions) ([]warning, error) {
	s := c.settings
	if o.demo && s.source("listen").kind == fromDefault {
		o.listen = demoListen
		s.sources["listen"] = source{kind: fromDefault, note: "--demo: loopback only"}
	}
	listenOK := true
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		s.problem("listen", fmt.Errorf("--listen %q: want HOST:PORT or :PORT, e.g. 127.0.0.1:8080: %w", o.listen, err))
		listenOK = false
	}
	if o.issuer == "" && listenOK {
		o.issuer = deriveIssuer(o.listen, nil)
		s.sources["issuer"] = source{kind: fromDerived, note: "from --listen"}
	} else if o.issuer != "" {
		if err := checkIssuer(o.issuer); err != nil {
			s.problem("issuer", err)
		}
	}
	s.add(o.validate())
	if err := s.err(); err != nil {
		return nil, err
	}
	return o.warnings(s.source("issuer").kind == fromDerived), nil
}

// checkIssuer refuses an issuer that cannot be one: tokens carry it as
// "iss" and clients compare it byte for byte with the URL they configured.
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	switch {
	case err != nil:
		return fmt.Errorf("--issuer %q: %w", issuer, err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return fmt.Errorf("--issuer %q: give the URL clients reach stile at, e.g. https://id.example.com", issuer)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("--issuer %q: an issuer has no query, fragment or user name", issuer)
	}
	return nil
}

// deriveIssuer is the issuer when none is given: http on --listen's port,
// at localhost unless --listen names another host. actual, when given, is
// the address the listener got (for port 0).
func deriveIssuer(listen string, actual net.Addr) string {
	host, port, _ := net.SplitHostPort(listen)
	if tcp, ok := actual.(*net.TCPAddr); ok {
		port = fmt.Sprint(tcp.Port)
	}
	switch host {
	case "", "0.0.0.0", "::", "127.0.0.1", "localhost":
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// warning is a configuration that works but probably not as meant; a soft
// one (a note) is likely fine but worth knowing.
type warning struct {
	Soft    bool   `json:"soft,omitempty"`
	Message string `json:"message"`
}

func (w warning) String() string {
	if w.Soft {
		return "note: " + w.Message
	}
	return "warning: " + w.Message
}

func logWarnings(log *slog.Logger, ws []warning) {
	for _, w := range ws {
		if w.Soft {
			log.Info(w.Message)
		} else {
			log.Warn(w.Message)
		}
	}
}

// warnings looks at where the issuer sends clients and where stile
// listens. The options are valid.
func (o *serveOptions) warnings(derived bool) []warning {
	var ws []warning
	u, _ := url.Parse(o.issuer)
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	lhost, lport, _ := net.SplitHostPort(o.listen)
	if u.Scheme == "http" && !isLoopback(host) {
		ws = append(ws, warning{Message: fmt.Sprintf("--issuer %s is plain http on a host other than this machine: cookies are not Secure "+
			"and passwords, codes and tokens cross the network in clear; put a TLS-terminating proxy in front, "+
			"set --issuer to its https URL and --trusted-proxies to its address", o.issuer)})
	}
	if o.demo && !isLoopback(lhost) {
		ws = append(ws, warning{Message: fmt.Sprintf("--demo prints its password, and --listen %s accepts connections from other machines: "+
			"anyone who reaches this one can sign in as the demo user; leave --listen out for 127.0.0.1:8080", o.listen)})
	}
	if derived {
		if !o.demo && !isLoopback(lhost) && isLoopback(host) {
			ws = append(ws, warning{Soft: true, Message: fmt.Sprintf("no --issuer: tokens and redirects name %s (from --listen %s); "+
				"clients on other machines need --issuer set to the URL they reach stile at", o.issuer, o.listen)})
		}
		return ws
	}
	portOff := lport != "0" && port != lport
	hostOff := !hostsAgree(host, lhost)
	switch {
	case !portOff && !hostOff, u.Scheme == "https":
		// https: stile speaks plain HTTP, so a TLS proxy is in front and
		// maps the port; nothing to compare.
	case o.trustedProxies != "":
		ws = append(ws, warning{Soft: true, Message: fmt.Sprintf("--issuer %s is not where --listen %s listens: "+
			"fine if the proxy in --trusted-proxies forwards it there", o.issuer, o.listen)})
	default:
		ws = append(ws, warning{Message: fmt.Sprintf("--issuer %s is not where --listen %s listens, and no proxy is configured "+
			"(--trusted-proxies): browsers and clients will be sent where stile does not answer; leave --issuer out "+
			"to derive it from --listen (%s), or set it to the URL that reaches this address", o.issuer, o.listen, deriveIssuer(o.listen, nil))})
	}
	return ws
}

// isLoopback: a host name or address only this machine reaches.
func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostsAgree says whether a client sent to the issuer's host can reach a
// listener on lhost, as far as one can tell without resolving names.
func hostsAgree(host, lhost string) bool {
	if ip := net.ParseIP(lhost); lhost == "" || (ip != nil && ip.IsUnspecified()) {
		return true // every interface: whatever the name resolves to
	}
	if isLoopback(host) || isLoopback(lhost) {
		return isLoopback(host) && isLoopback(lhost)
	}
	hip, lip := net.ParseIP(host), net.ParseIP(lhost)
	if hip != nil && lip != nil {
		return hip.Equal(lip)
	}
	return true // a name: it may well resolve to lhost
}
