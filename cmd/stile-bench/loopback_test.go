package main

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckLoopback(t *testing.T) {
	lookup := func(host string) ([]string, error) {
		switch host {
		case "localhost":
			return []string{"127.0.0.1", "::1"}, nil
		case "mixed.test":
			return []string{"127.0.0.1", "192.0.2.7"}, nil
		case "far.test":
			return []string{"203.0.113.9"}, nil
		}
		return nil, errors.New("no such host")
	}
	for _, ok := range []string{"http://127.0.0.1:8080", "http://127.3.2.1", "http://[::1]:9000/", "https://localhost:8443"} {
		if _, err := checkLoopback(ok, lookup); err != nil {
			t.Errorf("checkLoopback(%q) = %v, want accepted", ok, err)
		}
	}
	for refused, why := range map[string]string{
		"http://10.0.0.1:8080":  "not a loopback",
		"http://[2001:db8::1]/": "not a loopback",
		"https://far.test":      "not a loopback",
		"https://mixed.test":    "not a loopback", // every address must be loopback
		"http://nowhere.test":   "resolve",
		"ftp://127.0.0.1/":      "http(s) URL",
		"127.0.0.1:8080":        "http(s) URL",
		"http://0.0.0.0:8080":   "not a loopback",
	} {
		if _, err := checkLoopback(refused, lookup); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("checkLoopback(%q) = %v, want an error saying %q", refused, err, why)
		}
	}
}
