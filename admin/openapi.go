package admin

import (
	_ "embed"
	"net/http"
)

// Document is the API's OpenAPI 3.1 description, served at
// /api/v1/openapi.json and held to the router and to real responses by
// the tests.
//
//go:embed openapi.json
var Document []byte

func serveDocument(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", typeJSON)
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(Document)
}
