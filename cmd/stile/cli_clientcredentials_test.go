package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
)

// TestCLIClientCredentials: an operator registers a machine client (no
// redirect URI) with the scopes it may be granted; a public client cannot
// have the grant, nor a client a scope that concerns a user; a client with
// redirect URIs keeps authorization_code when it gains the grant.
func TestCLIClientCredentials(t *testing.T) {
	c := newCLI(t)
	var cl map[string]any
	c.json(&cl, "", "client", "add", "--id", "svc", "--type", "web", "--grant-type", "client_credentials",
		"--scope", "stile:admin", "--scope", "api:read", "--audience", "https://api.example.com", "--json")
	if strings.Join(toStrings(cl["grant_types"]), ",") != "client_credentials" || len(toStrings(cl["redirect_uris"])) != 0 ||
		strings.Join(toStrings(cl["allowed_scopes"]), ",") != "stile:admin,api:read" || cl["client_secret"] == nil {
		t.Fatalf("client add of a machine client = %v", cl)
	}
	if out := c.ok("", "client", "show", "svc"); !strings.Contains(out, `["stile:admin","api:read"]`) {
		t.Errorf("client show lacks the allowed scopes:\n%s", out)
	}

	// A public client: refused with the grant, registered without it.
	spa := []string{"client", "add", "--id", "spa", "--type", "spa", "--redirect-uri", "https://spa.example.com/cb"}
	c.fails("--grant-type client_credentials: a spa client is public", "", append(spa, "--grant-type", "client_credentials")...)
	c.ok("", spa...)
	c.fails("--grant-type client_credentials: a spa client is public", "", "client", "update", "spa", "--grant-type", "client_credentials")
	c.fails("--grant-type client_credentials: a native client is public", "", "client", "update", "svc", "--type", "native")

	// Without a redirect URI a client needs the grant; a client with one
	// keeps signing users in when it gains the grant.
	c.fails("--redirect-uri", "", "client", "add", "--id", "x", "--type", "web")
	c.fails("--redirect-uri", "", "client", "add", "--id", "x", "--type", "web", "--grant-type", "refresh_token")
	c.ok("", "client", "add", "--id", "app", "--type", "web", "--redirect-uri", "https://app.example.com/cb")
	c.json(&cl, "", "client", "update", "app", "--grant-type", "client_credentials", "--scope", "api:read", "--json")
	if strings.Join(toStrings(cl["grant_types"]), ",") != "authorization_code,client_credentials" {
		t.Fatalf("client update adding client_credentials = %v", cl)
	}

	// Allowed scopes are scope tokens that concern no user; '' clears them.
	for _, bad := range []string{"openid", "offline_access", "stile:mfa", "two words", `a"b`} {
		c.fails("--scope: allowed scope", "", "client", "update", "svc", "--scope", bad)
	}
	c.json(&cl, "", "client", "update", "svc", "--scope", "", "--json")
	if len(toStrings(cl["allowed_scopes"])) != 0 || strings.Join(toStrings(cl["grant_types"]), ",") != "client_credentials" {
		t.Fatalf("client update --scope '' = %v", cl)
	}
	c.fails("--id", "", "client", "add", "--id", "0b6c2f3e-9a51-4c8e-8f0e-2d7f1a6b9c40", "--type", "web",
		"--grant-type", "client_credentials")
	c.fails("--grant-type \"password\"", "", "client", "add", "--id", "x", "--type", "web", "--grant-type", "password")

	// Removing the client removes its tokens, which name no user.
	db := c.store(t)
	ctx := context.Background()
	tok := &storage.AccessToken{ID: "svc-token", ClientID: "svc", ExpiresAt: time.Now().Add(time.Hour)}
	if err := db.CreateAccessToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if got, err := db.GetAccessToken(ctx, "svc-token"); err != nil || got.UserID != "" {
		t.Fatalf("a client's own token reads back as %+v, %v", got, err)
	}
	c.ok("", "client", "remove", "svc")
	if _, err := db.GetAccessToken(ctx, "svc-token"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after client remove: %v, want not found", err)
	}
}
