package main

import (
	"fmt"
	"net"
	"net/url"
)

// checkLoopback refuses an issuer that is not on this machine's loopback:
// a load driver pointed at someone else's server is an attack, and the
// CPU and memory figures come from this machine's /proc anyway. A host
// name must resolve only to loopback addresses ("localhost" does).
func checkLoopback(issuer string, lookup func(string) ([]string, error)) (*url.URL, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-issuer %q: want an http(s) URL", issuer)
	}
	host := u.Hostname()
	addrs := []string{host}
	if net.ParseIP(host) == nil {
		if addrs, err = lookup(host); err != nil {
			return nil, fmt.Errorf("-issuer %q: resolve %s: %w", issuer, host, err)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("-issuer %q: %s resolves to nothing", issuer, host)
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("-issuer %q: %s is not a loopback address; stile-bench drives only a server on this machine", issuer, a)
		}
	}
	return u, nil
}
