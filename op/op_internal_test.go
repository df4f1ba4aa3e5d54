package op

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestDiscoveryGolden pins stile's discovery document: it is a public
// contract, and a change to it should be a deliberate one.
func TestDiscoveryGolden(t *testing.T) {
	got, err := discovery("https://id.example.com", []string{"RS256"})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "discovery.json")
	if *update {
		os.WriteFile(golden, append(got, '\n'), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./op -update to create it)", err)
	}
	if string(want) != string(got)+"\n" {
		t.Errorf("discovery document changed (go test ./op -update to accept):\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func TestCheckIssuer(t *testing.T) {
	for issuer, ok := range map[string]bool{
		"https://id.example.com":      true,
		"http://localhost:8080":       true,
		"https://id.example.com/":     false,
		"https://id.example.com/auth": false,
		"id.example.com":              false,
		"ftp://id.example.com":        false,
		"https://id.example.com?x=1":  false,
	} {
		if err := checkIssuer(issuer); (err == nil) != ok {
			t.Errorf("checkIssuer(%q) = %v, want ok=%v", issuer, err, ok)
		}
	}
}

func TestACRFor(t *testing.T) {
	for _, tc := range []struct {
		amr  []string
		want string
	}{
		{[]string{"pwd", "otp", "mfa"}, ACRMultiFactor},
		{[]string{"pwd", "sms", "mfa"}, ACRMultiFactor},
		{[]string{"otp"}, ACRSingleFactor}, // a passwordless code sign-in
		{[]string{"pwd"}, ACRSingleFactor}, // an exempt account
		{nil, ""},
	} {
		if got := acrFor(tc.amr); got != tc.want {
			t.Errorf("acrFor(%q) = %q, want %q", tc.amr, got, tc.want)
		}
	}
}
