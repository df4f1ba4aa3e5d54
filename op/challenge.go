package op

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// The provider's side of the authorization challenge endpoint
// (draft-ietf-oauth-first-party-apps-04; the endpoint itself is the
// login's, login/handler_challenge.go): who the client is, what it asks
// for, and the code once the login has answered.

// ChallengeRequest authenticates the client of a request to the
// authorization challenge endpoint exactly as the token endpoint does — a
// confidential client by its secret (HTTP Basic, or client_secret in the
// form), a public one by its client_id alone — and refuses a client that
// is not first-party with first_party_app on, or cannot redeem codes. It
// reads the request's OAuth parameters from the form (r.ParseForm done)
// into an authorization request that is not stored: a PKCE S256
// code_challenge always (the auth_session and the code are bound to it),
// and on the first request response_type=code and the scopes, checked as
// /authorize checks them. The request has no redirect URI: the draft's
// token request carries none, and no browser can be sent anywhere with it.
// Refusals are *oidc.Error, with generic descriptions, or *RateLimited
// once the source address has made more client-authenticated calls than
// the token endpoints allow it (the same count: guessing a client secret
// here costs what it costs there).
func (p *Provider) ChallengeRequest(r *http.Request, first bool) (*storage.AuthRequest, error) {
	ctx := r.Context()
	key := "token:" + clientip.Subject(clientip.From(ctx))
	ok, retry, err := p.leases.admit(ctx, key, p.storage.limits.TokenPerAddress)
	if err != nil {
		return nil, p.storage.serverError(ctx, "count challenge request", err)
	}
	if !ok {
		p.count.Throttled("token")
		return nil, &RateLimited{RetryAfter: retry}
	}
	c, err := p.challengeClient(r)
	if err != nil {
		return nil, err
	}
	switch {
	case !c.FirstParty || !c.FirstPartyApp:
		return nil, oidc.ErrUnauthorizedClient().WithDescription("this client may not use the authorization challenge endpoint")
	case !c.GrantTypes.Contains(storage.GrantAuthorizationCode):
		return nil, oidc.ErrUnauthorizedClient().WithDescription("this client cannot redeem authorization codes")
	}
	f := r.PostForm
	challenge, method := f.Get("code_challenge"), f.Get("code_challenge_method")
	switch {
	case challenge == "":
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge is required (PKCE, S256)")
	case method != string(oidc.CodeChallengeMethodS256):
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256; plain is not supported")
	case !pkceChallenge.MatchString(challenge):
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]")
	}
	ar := &storage.AuthRequest{ID: newID(), ClientID: c.ID, ResponseType: string(oidc.ResponseTypeCode), CodeChallenge: challenge,
		CodeChallengeMethod: method, Nonce: f.Get("nonce"), ExpiresAt: p.db.Now().Add(p.storage.lifetimes.Login)}
	if !first {
		return ar, nil
	}
	switch rt := f.Get("response_type"); rt {
	case "":
		return nil, oidc.ErrInvalidRequest().WithDescription("response_type is required and must be code")
	case string(oidc.ResponseTypeCode):
	default:
		return nil, &oidc.Error{ErrorType: "unsupported_response_type", Description: "response_type must be code"}
	}
	wrapped, err := p.storage.client(ctx, c.ID)
	if err != nil {
		return nil, p.storage.serverError(ctx, "get client", err)
	}
	scopes, err := zop.ValidateAuthReqScopes(wrapped, strings.Fields(f.Get("scope")))
	if err != nil {
		return nil, err
	}
	if !c.GrantTypes.Contains(storage.GrantRefreshToken) { // as at /authorize (authrequest.go)
		scopes = slices.DeleteFunc(scopes, func(s string) bool { return s == oidc.ScopeOfflineAccess })
	}
	ar.Scopes = storage.Strings(scopes)
	return ar, nil
}

// pkceChallenge is RFC 7636 §4.2's code_challenge (an S256 one is 43).
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// challengeClient authenticates the request's client as the token endpoint
// does (the library's ParseAuthenticatedTokenRequest and
// AuthorizeCodeClient): Basic credentials are form-urlencoded (RFC 6749
// §2.3.1) and may not be mixed with a client_secret in the form; a
// client_id in the form must name the same client.
func (p *Provider) challengeClient(r *http.Request) (*storage.Client, error) {
	f := r.PostForm
	id, secret := f.Get("client_id"), f.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok {
		var err1, err2 error
		bid, err1 = url.QueryUnescape(bid)
		bsecret, err2 = url.QueryUnescape(bsecret)
		switch {
		case err1 != nil || err2 != nil:
			return nil, oidc.ErrInvalidClient().WithDescription("invalid client credentials")
		case secret != "":
			return nil, oidc.ErrInvalidRequest().WithDescription("use one way of client authentication, not two")
		case id != "" && id != bid:
			return nil, oidc.ErrInvalidRequest().WithDescription("client_id is not the authenticated client")
		}
		id, secret = bid, bsecret
	}
	if id == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("client_id is required")
	}
	ctx := r.Context()
	c, err := p.storage.storedClient(ctx, id)
	if notFound(err) {
		return nil, oidc.ErrInvalidClient().WithDescription("invalid client credentials")
	}
	if err != nil {
		return nil, p.storage.serverError(ctx, "get client", err)
	}
	switch c.AuthMethod {
	case storage.AuthNone:
		return c, nil // a public client: its PKCE challenge is what binds the flow
	case storage.AuthSecretBasic, storage.AuthSecretPost:
		return p.storage.authenticate(ctx, id, secret)
	}
	return nil, oidc.ErrInvalidClient().WithDescription("invalid client credentials")
}

// RateLimited refuses a call over the per-address limit; RetryAfter says
// when the next one is admitted.
type RateLimited struct{ RetryAfter time.Duration }

func (e *RateLimited) Error() string {
	return fmt.Sprintf("rate limited: retry after %s", e.RetryAfter)
}

// ChallengeCode mints the authorization code of a challenge request the
// login answered, as the callback does for a browser's: the request is
// claimed first, so it yields one code, once.
func (p *Provider) ChallengeCode(ctx context.Context, authRequestID string) (string, error) {
	if err := p.db.ClaimCallback(ctx, authRequestID); err != nil {
		return "", fmt.Errorf("challenge code: %w", err)
	}
	ar, err := p.db.GetAuthRequest(ctx, authRequestID)
	if err != nil {
		return "", fmt.Errorf("challenge code: %w", err)
	}
	if !ar.Done || ar.RedirectURI != "" {
		return "", fmt.Errorf("challenge code: auth request %s is not an answered challenge request", ar.ID)
	}
	wrapped, err := p.storage.wrap(ctx, ar)
	if err != nil {
		return "", fmt.Errorf("challenge code: %w", err)
	}
	code, err := zop.CreateAuthRequestCode(ctx, wrapped, p.storage, p.zop.Crypto())
	if err != nil {
		return "", fmt.Errorf("challenge code: %w", err)
	}
	return code, nil
}
