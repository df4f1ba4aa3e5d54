// Package stile carries the files of this repository that the stile binary
// serves as they are: the example custom login page in
// testdata/custom-login, which `stile serve --demo` serves at
// /demo/custom-login/ (the browser tests serve the same files from
// another site).
package stile

import (
	"embed"
	"io/fs"
)

//go:embed testdata/custom-login
var customLogin embed.FS

// CustomLoginPage is the example custom login page: index.html, login.js
// and style.css. Its host adds config.js.
func CustomLoginPage() fs.FS {
	sub, err := fs.Sub(customLogin, "testdata/custom-login")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}
