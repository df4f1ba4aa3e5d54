package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The repository's root, from cmd/stile.
const repoRoot = "../.."

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stileEnvNames are the environment variables stile reads: the env
// annotations of serve's flags (the global ones included), as its help
// lists them.
func stileEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"serve", "--help"}, func(string) string { return "" }, nil, &out, &errOut); err != nil {
		t.Fatalf("stile serve --help: %v\n%s", err, errOut.String())
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`\(env (STILE_[A-Z0-9_]+)\)`).FindAllStringSubmatch(out.String(), -1) {
		names[m[1]] = true
	}
	// A positive control: if the help stops naming them, this test says so
	// instead of finding every name unknown (or, worse, none used).
	for _, want := range []string{"STILE_DATABASE", "STILE_SECRET_FILE", "STILE_ISSUER", "STILE_LISTEN", "STILE_TRUSTED_PROXIES"} {
		if !names[want] {
			t.Fatalf("stile serve --help names no %s; found %v", want, names)
		}
	}
	return names
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct{ cmd, args string }

// stage is one FROM and what follows it.
type stage struct {
	from string // the image, without "AS name"
	ins  []instruction
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

func (s stage) last(cmd string) string {
	all := s.all(cmd)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}

// parseDockerfile reads the stages of a Dockerfile: comments dropped,
// backslash continuations joined, whitespace collapsed.
func parseDockerfile(src string) []stage {
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.Join(strings.Fields(cur.String()), " ")
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			from, _, _ := strings.Cut(args, " ")
			stages = append(stages, stage{from: from})
			return
		}
		if len(stages) > 0 {
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, instruction{cmd, args})
		}
	}
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if rest, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

// execForm parses an instruction's JSON (exec) form; nil if it is the
// shell form, which needs a shell the final image does not have.
func execForm(args string) []string {
	var argv []string
	if json.Unmarshal([]byte(args), &argv) != nil {
		return nil
	}
	return argv
}

// goVersion is go.mod's go directive as major.minor: the Go image's tag.
func goVersion(gomod string) string {
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	if m == nil {
		return ""
	}
	return m[1]
}

// makeBuildFlags is the Makefile's BUILDFLAGS with make's $(VAR) written
// as a shell's ${VAR}, as the Dockerfile's RUN has it.
func makeBuildFlags(makefile string) string {
	m := regexp.MustCompile(`(?m)^BUILDFLAGS\s*:?=\s*(.+)$`).FindStringSubmatch(makefile)
	if m == nil {
		return ""
	}
	return regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllString(strings.TrimSpace(m[1]), "$${$1}")
}

// checkDockerfile lists what is wrong with the Dockerfile df, given
// go.mod, the Makefile and the environment variables stile reads.
func checkDockerfile(df, gomod, makefile string, env map[string]bool) []string {
	var bad []string
	stages := parseDockerfile(df)
	if len(stages) < 2 {
		return []string{fmt.Sprintf("%d stages, want a builder and a final stage", len(stages))}
	}
	build, final := stages[0], stages[len(stages)-1]

	if want := "golang:" + goVersion(gomod); build.from != want {
		bad = append(bad, fmt.Sprintf("builder FROM %s, want %s (go.mod's go %s)", build.from, want, goVersion(gomod)))
	}
	run := strings.Join(build.all("RUN"), " && ")
	flags := makeBuildFlags(makefile)
	if flags == "" || !strings.Contains(run, flags) {
		bad = append(bad, fmt.Sprintf("the builder's go build does not use the Makefile's flags %s", flags))
	}
	if !strings.Contains(run, "CGO_ENABLED=0 go build") || !strings.Contains(run, "./cmd/stile") {
		bad = append(bad, "the builder does not run CGO_ENABLED=0 go build … ./cmd/stile")
	}
	if !strings.Contains(makefile, "CGO_ENABLED=0 $(GO) build $(BUILDFLAGS)") {
		bad = append(bad, "the Makefile's build changed: compare it with the Dockerfile's")
	}
	for _, arg := range []string{"VERSION", "COMMIT", "DATE"} {
		if !slices.ContainsFunc(build.all("ARG"), func(a string) bool { return a == arg || strings.HasPrefix(a, arg+"=") }) {
			bad = append(bad, "the builder has no ARG "+arg)
		}
	}

	if final.from != "gcr.io/distroless/static-debian12:nonroot" && final.from != "scratch" {
		bad = append(bad, fmt.Sprintf("final FROM %s, want distroless static (nonroot) or scratch", final.from))
	}
	u := final.last("USER")
	root := u == "root" || u == "0" || strings.HasPrefix(u, "root:") || strings.HasPrefix(u, "0:")
	if root || u == "" && !strings.HasSuffix(final.from, ":nonroot") {
		bad = append(bad, fmt.Sprintf("the final stage runs as %q, want a non-root user", u))
	}
	hc := final.last("HEALTHCHECK")
	_, hcCmd, _ := strings.Cut(hc, "CMD ")
	if argv := execForm(hcCmd); len(argv) < 2 || argv[0] != "/usr/local/bin/stile" || argv[1] != "health" {
		bad = append(bad, fmt.Sprintf("HEALTHCHECK %q, want CMD [\"/usr/local/bin/stile\", \"health\"] (exec form: no shell in the image)", hc))
	}
	if argv := execForm(final.last("ENTRYPOINT")); !slices.Equal(argv, []string{"/usr/local/bin/stile"}) {
		bad = append(bad, fmt.Sprintf("ENTRYPOINT %q, want [\"/usr/local/bin/stile\"]", final.last("ENTRYPOINT")))
	}
	if argv := execForm(final.last("CMD")); !slices.Equal(argv, []string{"serve"}) {
		bad = append(bad, fmt.Sprintf("CMD %q, want [\"serve\"]", final.last("CMD")))
	}
	if !slices.Contains(final.all("EXPOSE"), "8080") {
		bad = append(bad, "no EXPOSE 8080")
	}
	if v := execForm(final.last("VOLUME")); !slices.Equal(v, []string{"/var/lib/stile"}) {
		bad = append(bad, fmt.Sprintf("VOLUME %q, want [\"/var/lib/stile\"]", final.last("VOLUME")))
	}
	if !slices.ContainsFunc(final.all("COPY"), func(c string) bool {
		return strings.Contains(c, "--chown=65532:65532") && strings.HasSuffix(c, " /var/lib/stile")
	}) {
		bad = append(bad, "/var/lib/stile is not made the nonroot user's (COPY --chown=65532:65532 … /var/lib/stile)")
	}
	vars := map[string]string{}
	for _, e := range final.all("ENV") {
		for _, kv := range strings.Fields(e) {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
			if strings.HasPrefix(k, "STILE_") && !env[k] {
				bad = append(bad, "ENV "+k+": stile reads no such variable")
			}
		}
	}
	for k, want := range map[string]string{"STILE_DATABASE": "sqlite:/var/lib/stile/stile.db", "STILE_LISTEN": ":8080"} {
		if vars[k] != want {
			bad = append(bad, fmt.Sprintf("ENV %s=%q, want %q", k, vars[k], want))
		}
	}
	return bad
}

// TestDockerfile checks the Dockerfile as far as it can be without a
// container engine: two stages, the builder on go.mod's Go running the
// Makefile's build, the final stage distroless and non-root with a health
// check that needs no shell. The mutations show each check can fail.
func TestDockerfile(t *testing.T) {
	df, gomod, makefile := readRepoFile(t, "Dockerfile"), readRepoFile(t, "go.mod"), readRepoFile(t, "Makefile")
	env := stileEnvNames(t)
	if bad := checkDockerfile(df, gomod, makefile, env); len(bad) > 0 {
		t.Fatalf("Dockerfile:\n%s", strings.Join(bad, "\n"))
	}
	for _, m := range []struct{ old, new, want string }{
		{"FROM golang:1.26 AS build", "FROM golang:1.25 AS build", "want golang:1.26"},
		{"go build -trimpath", "go build", "the Makefile's flags"},
		{"-X main.date=${DATE}", "", "the Makefile's flags"},
		{"CGO_ENABLED=0 go build", "go build", "CGO_ENABLED=0"},
		{"ARG COMMIT=", "", "no ARG COMMIT"},
		{"FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12", "final FROM debian:12"},
		{"USER 65532:65532", "USER root", `runs as "root"`},
		{`CMD ["/usr/local/bin/stile", "health"]`, "CMD curl -f http://127.0.0.1:8080/readyz", "exec form"},
		{`ENTRYPOINT ["/usr/local/bin/stile"]`, "ENTRYPOINT /usr/local/bin/stile", "ENTRYPOINT"},
		{"EXPOSE 8080", "EXPOSE 80", "EXPOSE 8080"},
		{"--chown=65532:65532 /out/data", "/out/data", "nonroot user's"},
		{"STILE_LISTEN=:8080", "STILE_LISTEN_ADDR=:8080", "stile reads no such variable"},
	} {
		if !strings.Contains(df, m.old) {
			t.Fatalf("the Dockerfile has no %q to break", m.old)
		}
		bad := strings.Join(checkDockerfile(strings.Replace(df, m.old, m.new, 1), gomod, makefile, env), "\n")
		if !strings.Contains(bad, m.want) {
			t.Errorf("%q → %q: want a problem with %q, got:\n%s", m.old, m.new, m.want, bad)
		}
	}
	// The Makefile and the Dockerfile are compared, not each to itself.
	if bad := strings.Join(checkDockerfile(df, gomod, strings.Replace(makefile, "-s -w ", "", 1), env), "\n"); !strings.Contains(bad, "the Makefile's flags") {
		t.Errorf("a Makefile with other flags passed:\n%s", bad)
	}
}

// TestDockerignore: the build context holds no database, key, binary or
// node_modules (a key copied into an image layer would be in every copy
// of the image).
func TestDockerignore(t *testing.T) {
	lines := strings.Fields(readRepoFile(t, ".dockerignore"))
	for _, want := range []string{".git", "bin", "**/node_modules", "**/*.db", "**/*.key"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore has no %s", want)
		}
	}
}

// TestDockerfileBuild runs the builder stage's go build command, as the
// Dockerfile has it, on this machine (the image cannot be built here):
// the binary it makes is static and says the version, commit and date
// given as build arguments.
func TestDockerfileBuild(t *testing.T) {
	var cmd string
	for _, r := range parseDockerfile(readRepoFile(t, "Dockerfile"))[0].all("RUN") {
		if strings.Contains(r, "go build") {
			cmd = r
		}
	}
	if !strings.Contains(cmd, "/out/") {
		t.Fatalf("no go build into /out/ in the builder: %q", cmd)
	}
	out := t.TempDir()
	sh := exec.Command("sh", "-c", strings.ReplaceAll(cmd, "/out/", out+"/"))
	sh.Dir = repoRoot
	sh.Env = append(os.Environ(), "VERSION=v0.0.0-docker", "COMMIT=0123456789ab", "DATE=2026-12-02T00:00:00Z")
	if b, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	bin := filepath.Join(out, "stile")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked: it would not run on distroless static")
		}
	}
	b, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("stile version: %v\n%s", err, b)
	}
	for _, want := range []string{"stile v0.0.0-docker\n", "commit  0123456789ab", "built   2026-12-02T00:00:00Z"} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("no %q in\n%s", want, b)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "data")); err != nil || !fi.IsDir() {
		t.Fatalf("the volume's directory was not made: %v", err)
	}
}
