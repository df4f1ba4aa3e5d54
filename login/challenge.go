package login

import (
	"context"
	"database/sql"
	"net/http"

	"github.com/stile-id/stile/storage"
)

// The authorization challenge endpoint's steps on the login state machine
// (draft-ietf-oauth-first-party-apps-04; the HTTP side is
// handler_challenge.go):
//
//	first request   client + PKCE challenge + username + password ──AuthenticateChallenge──► transaction (auth_session)
//	next request    client + same PKCE challenge + auth_session + otp ──VerifyChallenge──► authorization request answered
//
// The transaction is DoorChallenge's: its binding is a MAC over the client
// and the PKCE code_challenge, so only the client that opened it, with the
// same challenge, can go on with it — and the code it yields is redeemable
// only with that challenge's code_verifier. Its authorization request has
// no redirect URI: no browser door opens it and its callback is never
// answered (doors.go). The transaction ends when it yields a code (single
// use) and lives as long as its authorization request (the login
// lifetime).

// ChallengeProvider is what the challenge endpoint needs of the OpenID
// provider; cmd wires the provider in.
type ChallengeProvider interface {
	// ChallengeRequest authenticates the request's client as the token
	// endpoint does, checks that it may use the endpoint, and reads the
	// OAuth parameters into an authorization request that is not stored
	// yet. first is the request without an auth_session, which must carry
	// response_type and may carry scope. Its refusals are *OAuthError.
	ChallengeRequest(r *http.Request, first bool) (*storage.AuthRequest, error)
	// ChallengeCode mints the authorization code of a request the login
	// answered: once per request.
	ChallengeCode(ctx context.Context, authRequestID string) (string, error)
}

// OAuthError is an OAuth error answer (RFC 6749 §5.2) the provider gave.
type OAuthError struct {
	Code        string // invalid_client, unauthorized_client, invalid_request, invalid_scope, …
	Description string
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

// ChallengeStart is the first request: the provider's authorization request
// for the client and the user's username and password.
type ChallengeStart struct {
	AuthRequest *storage.AuthRequest // checked by the provider, stored once the password is right
	Username    string
	Password    string
	RemoteAddr  string // for the log
}

// errRedirectToWeb is a sign-in the endpoint cannot finish: the user must
// go through the browser (enrolment of an authenticator app, say).
var errRedirectToWeb = &Error{Code: CodeRedirectToWeb, Message: "This sign-in needs the browser: start an authorization request at /authorize."}

var errChallengeBinding = fail(CodeWrongBrowser, "The auth_session was issued to another client or for another code_challenge.")

// challengeBinding is the binding of a challenge transaction: a MAC over
// the client and its PKCE code_challenge, under a key of its own.
func (f *Flow) challengeBinding(clientID, codeChallenge string) []byte {
	return mac(f.keys.Challenge, "challenge-binding", clientID, codeChallenge)
}

// challengeRequest reports whether an authorization request is the
// challenge endpoint's: the only ones without a redirect URI (the library
// refuses /authorize without one).
func challengeRequest(ar *storage.AuthRequest) bool { return ar.RedirectURI == "" }

// AuthenticateChallenge checks the first request's password on the same
// path as every other door (the address's rate, the guess reserved, one
// argon2id computation, unknown users alike), then opens the transaction
// and sends a code if its method calls for one. A sign-in that needs the
// browser (an authenticator to enrol) stores nothing and sends nothing.
// An exempt account still needs a second step here, as in direct mode.
func (f *Flow) AuthenticateChallenge(ctx context.Context, in ChallengeStart) (ch *Challenge, err error) {
	ar := in.AuthRequest
	a := newAudit(EventPassword)
	a.ActorClient, a.Detail["door"] = ar.ClientID, storage.DoorChallenge
	ctx = withAudit(ctx, a)
	defer func() {
		f.counted("password", "PASSWORD", storage.DoorChallenge, false, err)
		if ch != nil {
			a.Detail["next"] = ch.Method
		}
		f.finish(ctx, a, err)
	}()
	if err := checkCredentials(in.Username, in.Password); err != nil {
		return nil, err
	}
	user, err := f.checkPassword(ctx, Credentials{Username: in.Username, Password: in.Password, RemoteAddr: in.RemoteAddr, audit: a})
	if err != nil {
		return nil, err
	}
	log := f.log.With("user", user.ID, "client", ar.ClientID, "remote", in.RemoteAddr, "door", storage.DoorChallenge)
	if user.Disabled {
		log.Info("login refused", "step", "password", "reason", "disabled")
		return nil, fail(CodeAccountDisabled, msgDisabled)
	}
	client, err := f.db.GetClient(ctx, ar.ClientID)
	if err != nil {
		return nil, internal(err)
	}
	method, err := f.chooseMethod(ctx, user, client)
	if err != nil {
		log.Info("login refused", "step", "password", "reason", "no second factor for this client's policy")
		return nil, err
	}
	if baseMethod(method) == MethodTOTPEnroll || thenEnroll(method) {
		log.Info("login sent to the browser", "step", "password", "reason", "enrolment", "method", method)
		auditFrom(ctx).refused("redirect_to_web")
		return nil, errRedirectToWeb
	}
	if err := f.db.CreateAuthRequest(ctx, ar); err != nil {
		return nil, internal(err)
	}
	tx := &storage.LoginTransaction{AuthRequestID: sql.NullString{String: ar.ID, Valid: true}, ClientID: ar.ClientID,
		Door: storage.DoorChallenge, BindingHash: f.challengeBinding(ar.ClientID, ar.CodeChallenge), ExpiresAt: ar.ExpiresAt}
	if ch, err = f.secondStep(ctx, tx, user, log); err != nil {
		return nil, err
	}
	if ch.Enroll != nil || ch.Next != nil { // the factors changed since chooseMethod: never show a secret here
		return nil, errRedirectToWeb
	}
	return ch, nil
}

// ChallengeStep is a request with an auth_session.
type ChallengeStep struct {
	AuthSession   string
	ClientID      string // the authenticated client
	CodeChallenge string // the request's PKCE code_challenge: the one the auth_session was issued for
	OTP           string
	RemoteAddr    string
}

// VerifyChallenge checks the code of an auth_session and, when it is
// right, answers the authorization request for the user: it returns the
// request's ID, whose code the provider then mints.
func (f *Flow) VerifyChallenge(ctx context.Context, in ChallengeStep) (string, error) {
	binding := f.challengeBinding(in.ClientID, in.CodeChallenge)
	tx, err := f.openTransaction(ctx, in.AuthSession, binding, storage.DoorChallenge)
	if err != nil {
		f.log.Info("login refused", "step", "otp", "door", storage.DoorChallenge, "client", in.ClientID, "reason", AsError(err).Code,
			"remote", in.RemoteAddr)
		return "", err
	}
	v, err := f.Verify(ctx, OneTimeCode{TransactionID: in.AuthSession, Binding: binding, Door: storage.DoorChallenge, OTP: in.OTP,
		RemoteAddr: in.RemoteAddr})
	if err != nil {
		return "", err
	}
	if v.Next == nil || v.Next.ConsentFor != "" || !tx.AuthRequestID.Valid {
		return "", errRedirectToWeb // a step the endpoint cannot show (consent, enrolment)
	}
	return tx.AuthRequestID.String, nil
}
