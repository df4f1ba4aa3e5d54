package doctest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

const sample = "# A page\n\n" +
	"<!-- runnable -->\n```sh\necho ok at http://localhost:8080\n```\n\n" +
	"```sh\nexit 3 # not marked: never run\n```\n\n" +
	"<!-- runnable -->\n```sh\necho before\nfalse\necho after\n```\n\n" +
	"<!-- runnable: expect \"active\":true -->\n```sh\necho '{\"active\":false}'\n```\n\n" +
	"<!-- runnable: expect \"active\":true -->\n```sh\necho '{\"active\":true}'\n```\n\n" +
	"<!-- runnable -->\n```sh\nfalse | true\n```\n\n" +
	"<!-- runnable -->\n```sh\necho \"$UNSET_VARIABLE_OF_DOCTEST\"\n```\n"

// TestParse finds every block, marked or not, with its line.
func TestParse(t *testing.T) {
	blocks, err := Parse("page.md", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 7 {
		t.Fatalf("%d blocks, want 7: %+v", len(blocks), blocks)
	}
	if b := blocks[0]; !b.Runnable || b.Line != 4 || b.Lang != "sh" || b.Text != "echo ok at http://localhost:8080\n" {
		t.Errorf("first block: %+v", b)
	}
	if blocks[1].Runnable {
		t.Errorf("an unmarked block is runnable: %+v", blocks[1])
	}
	if b := blocks[3]; b.Expect != `"active":true` {
		t.Errorf("expect: %+v", b)
	}
	for _, bad := range []string{
		"<!-- runnable -->\n\n```sh\necho\n```\n", // not right before the fence
		"<!-- runnable: perhaps -->\n```sh\necho\n```\n",
		"```sh\necho\n", // unclosed
	} {
		if _, err := Parse("bad.md", []byte(bad)); err == nil {
			t.Errorf("Parse accepted %q", bad)
		}
	}
}

// TestRun is the runner's positive control: a block that exits 0 passes;
// one that fails anywhere (set -e, pipefail, an unset variable), or whose
// output lacks what its marker expects, fails with its file and line and
// its output.
func TestRun(t *testing.T) {
	blocks, err := Parse("page.md", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Dir: t.TempDir(), From: "http://localhost:8080", To: "http://127.0.0.1:1234"}
	out, err := r.Run(context.Background(), blocks[0])
	if err != nil || out != "ok at http://127.0.0.1:1234\n" {
		t.Errorf("a good block: %q, %v", out, err)
	}
	if _, err := r.Run(context.Background(), blocks[4]); err != nil {
		t.Errorf("a block with its expected output: %v", err)
	}
	for i, where := range map[int]string{2: "page.md:13", 3: "page.md:20", 5: "page.md:30", 6: "page.md:35"} {
		out, err := r.Run(context.Background(), blocks[i])
		if err == nil {
			t.Errorf("block %d passed:\n%s", i, out)
			continue
		}
		if !strings.HasPrefix(err.Error(), where+":") {
			t.Errorf("block %d: the error does not name %s: %v", i, where, err)
		}
	}
	// Variables pass from block to block through the state file, and
	// only through it.
	set := Block{File: "page.md", Line: 40, Lang: "sh", Text: "GREETING=$(echo hello)\n"}
	get := Block{File: "page.md", Line: 44, Lang: "sh", Text: "echo \"$GREETING\"\n"}
	if _, err := r.Run(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	if out, err := r.Run(context.Background(), get); err == nil {
		t.Errorf("a variable passed without a state file: %q", out)
	}
	r.State = filepath.Join(t.TempDir(), "state")
	if _, err := r.Run(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	if out, err := r.Run(context.Background(), get); err != nil || out != "hello\n" {
		t.Errorf("the next block: %q, %v", out, err)
	}

	_, err = r.Run(context.Background(), blocks[2])
	if _, output, _ := strings.Cut(err.Error(), "--- output ---\n"); output != "before\n" {
		t.Errorf("the failure does not show the output up to the failing line: %v", err)
	}
}
