package clientip_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/stile-id/stile/internal/clientip"
)

func TestResolve(t *testing.T) {
	proxies, err := clientip.ParseTrusted([]string{"10.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, remote string
		trusted      bool
		header       http.Header
		want         string
	}{
		{"no proxy: the peer", "192.0.2.7:5000", true, nil, "192.0.2.7"},
		{"untrusted peer: headers ignored", "192.0.2.7:5000", true, http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "192.0.2.7"},
		{"no trusted proxies: headers ignored", "10.0.0.1:5000", false, http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "10.0.0.1"},
		{"trusted peer: the hop it saw", "10.0.0.1:5000", true, http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"a forged left part is not believed", "10.0.0.1:5000", true, http.Header{"X-Forwarded-For": {"203.0.113.9, 198.51.100.1"}}, "198.51.100.1"},
		{"two trusted proxies", "10.0.0.1:5000", true, http.Header{"X-Forwarded-For": {"203.0.113.9, 198.51.100.1, 10.0.0.2"}}, "198.51.100.1"},
		{"repeated header lines", "10.0.0.1:5000", true, http.Header{"X-Forwarded-For": {"203.0.113.9", "198.51.100.1"}}, "198.51.100.1"},
		{"all trusted: the left-most", "10.0.0.1:5000", true, http.Header{"X-Forwarded-For": {"10.1.1.1, 10.0.0.2"}}, "10.1.1.1"},
		{"garbage from the proxy: the proxy", "10.0.0.1:5000", true, http.Header{"X-Forwarded-For": {"198.51.100.1, junk"}}, "10.0.0.1"},
		{"Forwarded wins", "[::1]:5000", true, http.Header{"Forwarded": {`for=203.0.113.9, for="[2001:db8::17]:4711";proto=https`},
			"X-Forwarded-For": {"198.51.100.1"}}, "2001:db8::17"},
		{"mapped IPv4", "[::ffff:192.0.2.7]:5000", true, nil, "192.0.2.7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r *clientip.Resolver
			if c.trusted {
				r = clientip.New(proxies)
			} else {
				r = clientip.New(nil)
			}
			req := &http.Request{RemoteAddr: c.remote, Header: c.header}
			if got := r.Resolve(req); got.String() != c.want {
				t.Fatalf("Resolve = %s, want %s", got, c.want)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "addr:192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "addr:2001:db8:1:2::/64",
	} {
		if got := clientip.Subject(netip.MustParseAddr(in)); got != want {
			t.Errorf("Subject(%s) = %s, want %s", in, got, want)
		}
	}
	if got := clientip.Subject(netip.Addr{}); got != "addr:unknown" {
		t.Errorf("Subject(invalid) = %s", got)
	}
}

func TestParseOne(t *testing.T) {
	for _, ok := range []string{"192.0.2.7", " 2001:db8::1 ", "::ffff:192.0.2.7"} {
		if _, err := clientip.ParseOne(ok); err != nil {
			t.Errorf("ParseOne(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "192.0.2.7:80", "192.0.2.7, 192.0.2.8", "[2001:db8::1]", "fe80::1%eth0", "localhost", "1.2.3"} {
		if _, err := clientip.ParseOne(bad); err == nil {
			t.Errorf("ParseOne(%q) accepted", bad)
		}
	}
	if _, err := clientip.ParseTrusted([]string{"10.0.0.0/8", "nope"}); err == nil {
		t.Error("ParseTrusted accepted nope")
	}
}
