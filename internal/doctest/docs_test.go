package doctest

import (
	"bufio"
	"context"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/pquerna/otp/totp"

	"github.com/stile-id/stile/conformance"
)

// docURL is the address the documentation's examples run against.
const docURL = "http://localhost:8080"

// pages are the documentation files, in the order their blocks run:
// README.md first, then docs/*.md by name.
func pages(t *testing.T, repo string) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repo, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(docs)
	return append([]string{filepath.Join(repo, "README.md")}, docs...)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestDocsRunnable runs every block marked runnable in the README and
// docs/ against one fresh demo server, as a newcomer pastes them after
// `make run` and `make install`: `stile` on the PATH, in the directory the
// server started in (stile.db and stile.db.key there, and the repository's
// go.mod and examples/, as in a clone), with ACCESS_TOKEN from a sign-in of
// the demo user and the DEMO_BACKEND_* variables the demo printed.
//
// One server serves every block, and blocks run in file order (README.md,
// then docs/*.md by name), so a block may use what an earlier one made —
// the README's client cms, say — and must not make what an earlier one
// made already. Keep that in mind when adding one. Within a page, blocks
// share shell variables, as when pasted into one terminal; each page
// starts a new one.
func TestDocsRunnable(t *testing.T) {
	repo := repoRoot(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "stile"), "./cmd/stile")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/stile: %v\n%s", err, out)
	}
	work := t.TempDir()
	for _, name := range []string{"go.mod", "go.sum", "examples"} {
		if err := os.Symlink(filepath.Join(repo, name), filepath.Join(work, name)); err != nil {
			t.Fatal(err)
		}
	}
	path := "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")
	demo := startDemo(t, filepath.Join(bin, "stile"), work, path)
	token := signIn(t, demo)

	r := &Runner{Dir: work, Repo: repo, From: docURL, To: demo.url, Env: []string{path,
		"ACCESS_TOKEN=" + token, "DEMO_BACKEND_ID=" + demo.backendID, "DEMO_BACKEND_SECRET=" + demo.backendSecret}}
	r.State = filepath.Join(t.TempDir(), "shell-state")
	ran := 0
	for _, file := range pages(t, repo) {
		os.Remove(r.State) // a new terminal for each page
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repo, file)
		blocks, err := Parse(rel, src)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if !b.Runnable {
				continue
			}
			ran++
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			if _, err := r.Run(ctx, b); err != nil {
				t.Error(err)
			}
			cancel()
		}
	}
	if ran < 20 {
		t.Errorf("only %d runnable blocks: a marker lost?", ran)
	}
	t.Logf("%d runnable blocks ran against %s", ran, demo.url)
}

// demo is a running `stile serve --demo` and what it printed.
type demo struct {
	url                        string
	username, password, secret string
	backendID, backendSecret   string
	printed                    string
}

var (
	printedUser    = regexp.MustCompile(`(?m)^\s*Username\s+(\S+)`)
	printedPass    = regexp.MustCompile(`(?m)^\s*Password\s+(\S+)`)
	printedSecret  = regexp.MustCompile(`(?m)^\s*TOTP secret\s+([A-Z2-7]+)`)
	printedBackend = regexp.MustCompile(`(?m)^\s*export DEMO_BACKEND_ID=(\S+) DEMO_BACKEND_SECRET=(\S+)\s*$`)
)

// startDemo starts the demo server in dir on a free loopback port and
// reads what it prints until the backend client's export line.
func startDemo(t *testing.T, stile, dir, path string) *demo {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	d := &demo{url: "http://localhost:" + port}
	cmd := exec.Command(stile, "serve", "--demo", "--listen", "127.0.0.1:"+port, "--issuer", d.url)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), path)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var printed strings.Builder
	deadline := time.After(2 * time.Minute)
read:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("stile serve --demo exited before printing the backend client's export line:\n%s", printed.String())
			}
			printed.WriteString(line + "\n")
			if printedBackend.MatchString(line) {
				break read
			}
		case <-deadline:
			t.Fatalf("stile serve --demo printed no backend client's export line (DEMO_BACKEND_ID=… DEMO_BACKEND_SECRET=…) within 2 minutes:\n%s", printed.String())
		}
	}
	go func() { // keep draining, so the server never blocks on its output
		for range lines {
		}
	}()
	d.printed = printed.String()
	for re, p := range map[*regexp.Regexp]*string{printedUser: &d.username, printedPass: &d.password, printedSecret: &d.secret} {
		m := re.FindStringSubmatch(d.printed)
		if m == nil {
			t.Fatalf("the demo printed no %s:\n%s", re, d.printed)
		}
		*p = m[1]
	}
	m := printedBackend.FindStringSubmatch(d.printed)
	d.backendID, d.backendSecret = m[1], m[2]
	for i := 0; ; i++ {
		resp, err := http.Get(d.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i == 100 {
			t.Fatalf("the demo server is not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return d
}

var exportToken = regexp.MustCompile(`export ACCESS_TOKEN='([^'\s]+)'`)

// signIn signs in as the demo user through stile's pages, as a person
// following the README does, and returns the access token the demo
// callback page offers to paste.
func signIn(t *testing.T, d *demo) string {
	t.Helper()
	b := conformance.NewBrowser(nil, "https://")
	p, err := b.Get(d.url + "/demo/login")
	if err != nil {
		t.Fatal(err)
	}
	if p, err = b.Submit(p, map[string]string{"username": d.username, "password": d.password}); err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(d.secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p, err = b.Submit(p, map[string]string{"otp": code}); err != nil {
		t.Fatal(err)
	}
	if p.Status != http.StatusOK || p.URL.Path != "/demo/callback" {
		t.Fatalf("the demo sign-in ended at %s (%d):\n%s", p.URL, p.Status, p.Body)
	}
	m := exportToken.FindStringSubmatch(html.UnescapeString(p.Body))
	if m == nil {
		t.Fatalf("the demo callback page offers no export ACCESS_TOKEN='…' line:\n%s", p.Body)
	}
	return m[1]
}

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`^#{1,6} +(.*?) *$`)
)

// anchors are the fragment identifiers GitHub gives a page's headings:
// lower case, punctuation but '-' and '_' dropped, spaces as '-', and a
// repeated one numbered.
func anchors(t *testing.T, src []byte) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	blocks, err := Parse("", src)
	if err != nil {
		t.Fatal(err)
	}
	inBlock := map[int]bool{}
	for _, b := range blocks {
		for i := b.Line; i <= b.Line+strings.Count(b.Text, "\n")+1; i++ {
			inBlock[i] = true
		}
	}
	for n, line := range strings.Split(string(src), "\n") {
		m := heading.FindStringSubmatch(line)
		if m == nil || inBlock[n+1] {
			continue
		}
		slug := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				return unicode.ToLower(r)
			}
			return -1
		}, m[1])
		id := slug
		for i := 1; seen[id]; i++ {
			id = slug + "-" + strconv.Itoa(i)
		}
		seen[id] = true
	}
	return seen
}

// TestDocsLinks checks every relative link of the README and docs/: the
// file exists, and a #fragment names a heading of the page it points at.
func TestDocsLinks(t *testing.T) {
	repo := repoRoot(t)
	files := pages(t, repo)
	ids := map[string]map[string]bool{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ids[f] = anchors(t, src)
	}
	links := 0
	for _, f := range files {
		src, _ := os.ReadFile(f)
		rel, _ := filepath.Rel(repo, f)
		for n, line := range strings.Split(string(src), "\n") {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				links++
				path, frag, _ := strings.Cut(target, "#")
				dest := f
				if path != "" {
					dest = filepath.Join(filepath.Dir(f), path)
					if _, err := os.Stat(dest); err != nil {
						t.Errorf("%s:%d: %s: no such file", rel, n+1, target)
						continue
					}
				}
				if frag == "" {
					continue
				}
				if _, ok := ids[dest]; !ok {
					t.Errorf("%s:%d: %s: a fragment of a page that is not documentation", rel, n+1, target)
				} else if !ids[dest][frag] {
					t.Errorf("%s:%d: %s: no heading with that anchor", rel, n+1, target)
				}
			}
		}
	}
	if links < 50 {
		t.Errorf("only %d relative links found: is the link pattern broken?", links)
	}
}

// TestDocsLinksControl is the link check's positive control: a broken
// fragment and a missing file are found, a good one is not.
func TestDocsLinksControl(t *testing.T) {
	ids := anchors(t, []byte("# Title\n\n## Sign-in: `stile serve` flags\n\n```sh\n# not a heading\n```\n## Title\n"))
	for _, want := range []string{"title", "sign-in-stile-serve-flags", "title-1"} {
		if !ids[want] {
			t.Errorf("anchor %q missing from %v", want, ids)
		}
	}
	if ids["not-a-heading"] {
		t.Errorf("a comment in a code block became an anchor: %v", ids)
	}
}

// TestDocsCoverEveryCommand walks `stile --help`: every command is in the
// CLI reference (docs/cli.md), and every flag of every command is
// documented somewhere in docs/.
func TestDocsCoverEveryCommand(t *testing.T) {
	repo := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "stile")
	build := exec.Command("go", "build", "-o", bin, "./cmd/stile")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/stile: %v\n%s", err, out)
	}
	cli, err := os.ReadFile(filepath.Join(repo, "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, f := range pages(t, repo) {
		src, _ := os.ReadFile(f)
		all.Write(src)
	}
	docs := all.String()
	flagLine := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`)
	commands, flags := 0, 0
	var walk func(path []string)
	walk = func(path []string) {
		out, err := exec.Command(bin, append(path, "--help")...).CombinedOutput()
		if err != nil {
			t.Fatalf("stile %s --help: %v\n%s", strings.Join(path, " "), err, out)
		}
		help := string(out)
		if len(path) > 0 {
			commands++
			if name := "stile " + strings.Join(path, " "); !strings.Contains(string(cli), "`"+name) {
				t.Errorf("docs/cli.md does not list %q", name)
			}
		}
		for _, m := range flagLine.FindAllStringSubmatch(help, -1) {
			flags++
			if f := "--" + m[1]; f != "--help" && !regexp.MustCompile(regexp.QuoteMeta(f)+`\b`).MatchString(docs) {
				t.Errorf("stile %s: %s is documented nowhere in README.md or docs/", strings.Join(path, " "), f)
			}
		}
		_, list, ok := strings.Cut(help, "Available Commands:\n")
		if !ok {
			return
		}
		list, _, _ = strings.Cut(list, "\n\n")
		for _, line := range strings.Split(list, "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 || fields[0] == "help" || fields[0] == "completion" {
				continue
			}
			walk(append(append([]string{}, path...), fields[0]))
		}
	}
	walk(nil)
	if commands < 20 || flags < 100 {
		t.Errorf("only %d commands and %d flags found: is the help format parsed?", commands, flags)
	}
}
