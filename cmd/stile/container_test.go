package main

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// noEngine is what the container tests say where they cannot run.
const noEngine = "no container engine here: the Dockerfile is untested on this machine"

// docker runs the docker CLI and returns its trimmed output, failing the
// test when it fails.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// requireEngine skips where no container engine answers: the docker CLI
// alone (as on the development machine) cannot build or run anything.
func requireEngine(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip(noEngine)
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip(noEngine)
	}
}

// TestContainerImage builds the image from the Dockerfile and runs it as
// a user would: the version stamped by the build arguments, a non-root
// user, `stile serve` on SQLite in the image's volume, and `stile health`
// inside the container saying ready (and not ready for a port nothing
// listens on).
func TestContainerImage(t *testing.T) {
	requireEngine(t)
	suffix := make([]byte, 4)
	rand.Read(suffix)
	tag := "stile-test:" + hex.EncodeToString(suffix)
	docker(t, "build", "--build-arg", "VERSION=v0.0.0-container", "--build-arg", "COMMIT=0123456789ab",
		"--build-arg", "DATE=2026-12-02T00:00:00Z", "-t", tag, repoRoot)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })

	if out := docker(t, "run", "--rm", tag, "version"); !strings.Contains(out, "stile v0.0.0-container") ||
		!strings.Contains(out, "commit  0123456789ab") {
		t.Fatalf("stile version in the image:\n%s", out)
	}
	if user := docker(t, "image", "inspect", "--format", "{{.Config.User}}", tag); user != "65532:65532" {
		t.Fatalf("the image runs as %q", user)
	}

	id := docker(t, "run", "-d", tag)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", "-v", id).Run() })
	within(t, 2*time.Minute, "stile health in the container", func() bool {
		out, err := exec.Command("docker", "exec", id, "/usr/local/bin/stile", "health").CombinedOutput()
		if err != nil {
			time.Sleep(time.Second)
		}
		return err == nil && strings.Contains(string(out), "200 OK")
	})
	// The first start created the database and its master key in the
	// volume, which only the nonroot user can write.
	if logs := docker(t, "logs", id); !strings.Contains(logs, "stile is listening") {
		t.Fatalf("container log:\n%s", logs)
	}
	out, err := exec.Command("docker", "exec", id, "/usr/local/bin/stile", "health", "--url", "http://127.0.0.1:1/readyz").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "connection refused") {
		t.Fatalf("stile health on a closed port: %v\n%s", err, out)
	}
}

// TestComposeConfig has docker compose read compose.yaml, where the
// compose plugin is installed (it needs no engine for that).
func TestComposeConfig(t *testing.T) {
	if exec.Command("docker", "compose", "version").Run() != nil {
		t.Skip("no docker compose here: compose.yaml is untested on this machine beyond TestCompose's checks")
	}
	cmd := exec.Command("docker", "compose", "-f", "compose.yaml", "config", "--quiet")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker compose config: %v\n%s", err, out)
	}
}
