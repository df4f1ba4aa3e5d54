package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
)

// challengeProvider hands the login's authorization challenge endpoint
// the provider's client authentication and codes, with the provider's
// OAuth errors as the login's.
type challengeProvider struct{ p *op.Provider }

func (c challengeProvider) ChallengeRequest(r *http.Request, first bool) (*storage.AuthRequest, error) {
	ar, err := c.p.ChallengeRequest(r, first)
	if oe := (*oidc.Error)(nil); errors.As(err, &oe) {
		return nil, &login.OAuthError{Code: string(oe.ErrorType), Description: oe.Description}
	}
	if rl := (*op.RateLimited)(nil); errors.As(err, &rl) {
		return nil, &login.Error{Code: login.CodeThrottled, RetryAfter: rl.RetryAfter,
			Message: "Too many requests from this address. Try again later."}
	}
	return ar, err
}

func (c challengeProvider) ChallengeCode(ctx context.Context, authRequestID string) (string, error) {
	return c.p.ChallengeCode(ctx, authRequestID)
}
