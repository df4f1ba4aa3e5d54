package doctest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Block is one fenced code block of a Markdown file.
type Block struct {
	File     string // as given to Parse
	Line     int    // of the opening fence, 1-based
	Lang     string // the fence's info string: sh, go, text…
	Text     string
	Runnable bool
	Expect   string // with Runnable: text the output must contain
}

// Where names the block for a failure message: file:line.
func (b Block) Where() string { return fmt.Sprintf("%s:%d", b.File, b.Line) }

const marker = "<!-- runnable"

// Parse returns the fenced code blocks of a Markdown file, in order.
func Parse(name string, src []byte) ([]Block, error) {
	var blocks []Block
	var cur *Block
	var fence, prev string
	prevOutside := false // prev was a line outside any block
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")):
			fence = trimmed[:3]
			cur = &Block{File: name, Line: n, Lang: strings.TrimSpace(strings.TrimLeft(trimmed, "`~"))}
			if m := strings.TrimSpace(prev); strings.HasPrefix(m, marker) {
				if !strings.HasSuffix(m, "-->") {
					return nil, fmt.Errorf("%s:%d: unterminated marker %q", name, n-1, m)
				}
				rest := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(m, marker), "-->"))
				switch {
				case rest == "":
				case strings.HasPrefix(rest, ": expect "):
					cur.Expect = strings.TrimSpace(strings.TrimPrefix(rest, ": expect "))
				default:
					return nil, fmt.Errorf("%s:%d: unknown marker %q", name, n-1, m)
				}
				cur.Runnable = true
			}
		case cur != nil && strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.Text += line + "\n"
		case prevOutside && strings.HasPrefix(strings.TrimSpace(prev), marker):
			return nil, fmt.Errorf("%s:%d: a runnable marker must be the line right before a fence", name, n-1)
		}
		prevOutside = cur == nil && !strings.HasPrefix(trimmed, "```") && !strings.HasPrefix(trimmed, "~~~")
		prev = line
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: unclosed code block", name, cur.Line)
	}
	return blocks, sc.Err()
}

// Runner runs blocks in Dir with Env added to the environment, each
// occurrence of From in a block replaced by To (the documentation's
// http://localhost:8080 by the test server's URL).
type Runner struct {
	Dir      string
	Env      []string
	From, To string
	Repo     string // the repository root, for go blocks' replace directive
	// State, when set, is a file that carries shell variables from one sh
	// block to the next, as when a reader pastes a page's blocks into one
	// terminal (TOKEN=$(curl …) in one block, "$TOKEN" in the next).
	// Remove it to start a new terminal.
	State string
}

// keepVars is appended to an sh block to save its variables to the state
// file: those with names in capitals, but not the shell's read-only ones.
const keepVars = `
__doctest_vars=$(compgen -v | grep -E '^[A-Z][A-Z0-9_]*$' || true)
declare -p $__doctest_vars 2>/dev/null | grep -v '^declare -[a-zA-Z]*r' > "$__DOCTEST_STATE" || true
`

// Run runs one runnable block and returns its combined output. The error
// names the block's file and line and holds the output.
func (r *Runner) Run(ctx context.Context, b Block) (string, error) {
	text := b.Text
	if r.From != "" {
		text = strings.ReplaceAll(text, r.From, r.To)
	}
	var cmd *exec.Cmd
	switch b.Lang {
	case "sh", "bash", "shell":
		script := text
		if r.State != "" {
			script = `if [ -f "$__DOCTEST_STATE" ]; then source "$__DOCTEST_STATE"; fi` + "\n" + text + keepVars
		}
		cmd = exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = r.Dir
	case "go":
		dir, err := r.goModule(text)
		if err != nil {
			return "", fmt.Errorf("%s: %w", b.Where(), err)
		}
		defer os.RemoveAll(dir)
		cmd = exec.CommandContext(ctx, "go", "run", "-mod=mod", ".")
		cmd.Dir = dir
	default:
		return "", fmt.Errorf("%s: a runnable block must be sh or go, not %q", b.Where(), b.Lang)
	}
	cmd.Env = append(append(os.Environ(), r.Env...), "__DOCTEST_STATE="+r.State)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v\n--- block ---\n%s--- output ---\n%s", b.Where(), err, text, out)
	}
	if b.Expect != "" && !strings.Contains(string(out), b.Expect) {
		return string(out), fmt.Errorf("%s: the output lacks %s\n--- block ---\n%s--- output ---\n%s", b.Where(), b.Expect, text, out)
	}
	return string(out), nil
}

// goModule writes a Go block into a module of its own that requires what
// the repository requires (so it builds offline, from the module cache) and
// replaces github.com/stile-id/stile with the repository.
func (r *Runner) goModule(src string) (string, error) {
	dir, err := os.MkdirTemp("", "doctest-go-")
	if err != nil {
		return "", err
	}
	gomod, err := os.ReadFile(filepath.Join(r.Repo, "go.mod"))
	if err != nil {
		return "", err
	}
	gosum, err := os.ReadFile(filepath.Join(r.Repo, "go.sum"))
	if err != nil {
		return "", err
	}
	mod := strings.Replace(string(gomod), "module github.com/stile-id/stile", "module doctest", 1) +
		"\nrequire github.com/stile-id/stile v0.0.0\n\nreplace github.com/stile-id/stile => " + r.Repo + "\n"
	for name, data := range map[string][]byte{"go.mod": []byte(mod), "go.sum": gosum, "main.go": []byte(src)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}
