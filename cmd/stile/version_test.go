package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func runVersion(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(t.Context(), append([]string{"version"}, args...), func(string) string { return "" }, nil, &out, &errOut); err != nil {
		t.Fatalf("stile version: %v\n%s", err, errOut.String())
	}
	return out.String()
}

// TestVersion: an unstamped build says "dev" and its Go version; a stamped
// one says what it was stamped with, as text and as JSON.
func TestVersion(t *testing.T) {
	if got := runVersion(t); !strings.HasPrefix(got, "stile dev\n") || !strings.Contains(got, runtime.Version()) {
		t.Fatalf("unstamped:\n%s", got)
	}
	version, commit, date = "v1.2.3", "0123456789ab", "2026-12-02T10:00:00Z"
	t.Cleanup(func() { version, commit, date = "", "", "" })
	got := runVersion(t)
	for _, want := range []string{"stile v1.2.3\n", "commit  0123456789ab", "built   2026-12-02T10:00:00Z"} {
		if !strings.Contains(got, want) {
			t.Fatalf("stamped: no %q in\n%s", want, got)
		}
	}
	var b buildInfo
	if err := json.Unmarshal([]byte(runVersion(t, "--json")), &b); err != nil {
		t.Fatal(err)
	}
	if b != (buildInfo{Version: "v1.2.3", Commit: "0123456789ab", Date: "2026-12-02T10:00:00Z", Go: runtime.Version()}) {
		t.Fatalf("--json: %+v", b)
	}
}

// TestVersionStamp builds the binary with the linker flags the Makefile
// uses, so a renamed variable cannot silently stop the stamping.
func TestVersionStamp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "stile")
	build := exec.Command("go", "build", "-o", bin, "-ldflags",
		"-X main.version=v9.9.9 -X main.commit=feedfacecafe -X main.date=2026-01-02T03:04:05Z", ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("stile version: %v\n%s", err, out)
	}
	for _, want := range []string{"stile v9.9.9\n", "commit  feedfacecafe", "built   2026-01-02T03:04:05Z"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("no %q in\n%s", want, out)
		}
	}
}
