// Package clientip finds the address a request comes from, for the limits
// stile keeps per source: the TCP peer, or — only when the peer is a proxy
// the operator trusts (--trusted-proxies) — the right-most address in
// Forwarded / X-Forwarded-For that is not itself a trusted proxy. Left of
// that, anyone can write anything, so nothing left of it is believed.
// Without trusted proxies the headers are ignored.
package clientip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver resolves request addresses against a set of trusted proxies.
type Resolver struct{ trusted []netip.Prefix }

// New returns a Resolver trusting the given proxies (none: headers ignored).
func New(trusted []netip.Prefix) *Resolver { return &Resolver{trusted: trusted} }

// ParseTrusted parses a list of CIDRs or single addresses ("10.0.0.0/8",
// "::1"), naming every entry that is not one.
func ParseTrusted(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var bad []string
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		bad = append(bad, fmt.Sprintf("%q", s))
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("not a CIDR or an IP address: %s", strings.Join(bad, ", "))
	}
	return out, nil
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the request's source address; invalid only if not even
// the TCP peer parses (never, for a real connection).
func (r *Resolver) Resolve(req *http.Request) netip.Addr {
	peer := peerAddr(req.RemoteAddr)
	if !peer.IsValid() || !r.isTrusted(peer) {
		return peer
	}
	hops := forwardedHops(req.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHop(hops[i])
		if err != nil {
			// A trusted proxy wrote something we cannot read: attribute the
			// request to that proxy rather than to anything further left.
			return client
		}
		client = a
		if !r.isTrusted(a) {
			return a
		}
	}
	return client
}

// Middleware records each request's source address in its context.
func (r *Resolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		next.ServeHTTP(w, req.WithContext(With(req.Context(), r.Resolve(req))))
	})
}

type ctxKey struct{}

// With returns ctx carrying addr as the source address.
func With(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, ctxKey{}, addr)
}

// From returns the source address recorded by Middleware; invalid if none.
func From(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(ctxKey{}).(netip.Addr)
	return a
}

// Subject is the limit subject of an address: the address itself, or for
// IPv6 its /64, which one user or household usually holds whole. An
// invalid address has the subject "addr:unknown" (one shared bucket, never
// no limit).
func Subject(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "addr:unknown"
	case a.Is6():
		p, _ := a.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + a.String()
}

// ErrNotOneAddress says a header that must hold exactly one IP address does not.
var ErrNotOneAddress = errors.New("not exactly one IP address")

// ParseOne parses a header value that must be exactly one IP address:
// no port, no list, no brackets, no zone. It fails closed.
func ParseOne(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, ErrNotOneAddress
	}
	return a.Unmap(), nil
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(remote)
	return a.Unmap()
}

// forwardedHops lists the hops of the Forwarded header (RFC 7239), or else
// of X-Forwarded-For, left to right across repeated header lines.
func forwardedHops(h http.Header) []string {
	var hops []string
	if fw := h.Values("Forwarded"); len(fw) > 0 {
		for _, line := range fw {
			for _, elem := range strings.Split(line, ",") {
				hop := ""
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(k, "for") {
						hop = strings.Trim(v, `"`)
					}
				}
				hops = append(hops, hop)
			}
		}
		return hops
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for _, hop := range strings.Split(line, ",") {
			hops = append(hops, strings.TrimSpace(hop))
		}
	}
	return hops
}

// parseHop reads one hop: an address, maybe with a port, IPv6 maybe in brackets.
func parseHop(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), nil
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil && a.Zone() == "" {
			return a.Unmap(), nil
		}
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil && a.Zone() == "" {
		return a.Unmap(), nil
	}
	return netip.Addr{}, fmt.Errorf("forwarded hop %q: %w", s, ErrNotOneAddress)
}
