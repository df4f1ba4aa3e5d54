package op

import (
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/stile-id/stile/storage"
)

// scopeClaims are the standard claims each scope asks for (OpenID Connect
// Core §5.4).
var scopeClaims = map[string][]string{
	oidc.ScopeProfile: {"name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
		"profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at"},
	oidc.ScopeEmail:   {"email", "email_verified"},
	oidc.ScopePhone:   {"phone_number", "phone_number_verified"},
	oidc.ScopeAddress: {"address"},
}

// standardClaim is a standard claim of u, if stile has it: the username
// and email are the account's own; every other one comes from the user's
// attribute of the same name (e.g. attributes.name, attributes.address).
func standardClaim(u *storage.User, name string) (any, bool) {
	switch name {
	case "preferred_username":
		return u.Username, true
	case "email":
		return u.Email, u.Email != ""
	case "updated_at":
		return u.UpdatedAt.Unix(), true
	}
	if !standardNames[name] {
		return nil, false
	}
	v, ok := u.Attributes[name]
	return v, ok && v != nil
}

// standardNames holds every claim name of scopeClaims.
var standardNames = func() map[string]bool {
	out := map[string]bool{}
	for _, names := range scopeClaims {
		for _, n := range names {
			out[n] = true
		}
	}
	return out
}()

// wantedClaims lists the standard claims the scopes ask for, then the ones
// asked for by name with the claims parameter.
func wantedClaims(scopes, named []string) []string {
	var out []string
	for _, s := range scopes {
		out = append(out, scopeClaims[s]...)
	}
	for _, n := range named {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
