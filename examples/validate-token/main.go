// Command validate-token checks a stile access token the way a CMS backend
// does: offline, against the keys stile publishes (JWKS), with the issuer,
// the audience and the expiry checked. The README walks through it.
//
//	go run ./examples/validate-token -issuer http://localhost:8080 -audience demo "$ACCESS_TOKEN"
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Claims are what stile puts in an access token for a backend.
type Claims struct {
	Subject    string         `json:"sub"`
	UID        string         `json:"uid"`
	Roles      []string       `json:"roles"`
	Attributes map[string]any `json:"attributes"`
	Scope      string         `json:"scope"`
}

func main() {
	issuer := flag.String("issuer", "http://localhost:8080", "stile's issuer URL")
	audience := flag.String("audience", "", "the aud your API expects: the client's --audience, or its client_id")
	flag.Parse()
	if *audience == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: validate-token -issuer URL -audience AUD ACCESS_TOKEN")
		os.Exit(2)
	}
	ctx := context.Background()

	// Once, at startup: discovery finds the JWKS; the verifier caches the
	// keys and refetches them when stile rotates.
	provider, err := oidc.NewProvider(ctx, *issuer)
	if err != nil {
		fmt.Fprintln(os.Stderr, "discovery:", err)
		os.Exit(1)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: *audience})

	// Per request: signature, iss, aud and exp are all checked here.
	token, err := verifier.Verify(ctx, flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "invalid token:", err)
		os.Exit(1)
	}
	var c Claims
	if err := token.Claims(&c); err != nil {
		fmt.Fprintln(os.Stderr, "claims:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(c)
}
