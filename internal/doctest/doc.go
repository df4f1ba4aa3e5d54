// Package doctest runs the code blocks of stile's Markdown documentation,
// so that what the README and docs/ tell a newcomer to paste keeps working.
//
// A block runs when the line right before its opening fence is a marker,
// an HTML comment that GitHub does not show:
//
//	<!-- runnable -->                  the block must exit 0
//	<!-- runnable: expect TEXT -->     ... and its output must contain TEXT
//
// sh blocks run with `bash -euo pipefail`; go blocks must be complete
// programs and are run with `go run` in a module of their own that replaces
// github.com/stile-id/stile with the repository. The tests in this package
// start one demo server (`stile serve --demo`) for every block, sign in as
// its demo user through the real pages, and run the blocks in file order
// (README.md, then docs/*.md by name) in the server's working directory.
package doctest
