package login

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"fmt"

	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// One front door per transaction. A login transaction belongs to the door
// that opened it, recorded as storage.LoginTransaction.Door, and every
// other door refuses it:
//
//	door        opens on                                     each step proves
//	DoorPages   an auth request bound at /login (any client) the browser's binding cookie
//	DoorAPI     an auth request bound at /login, of a client  nothing here (the transactionID only the
//	            with a login_url, from a registered Origin,   opener learnt): the redirectURI (a ticket
//	            with the loginToken /login gave the bound     for /login/session) works only in the
//	            browser's page                                bound browser, and so does the callback
//	DoorDirect  the client's apiKey (no auth request)         the same client's apiKey
//	DoorChallenge the client, authenticated as at the         the same client with the same PKCE
//	            token endpoint (an auth request of its own,   code_challenge: a MAC over both
//	            no redirect URI: no browser door opens it)    (challenge.go, challengeBinding)
//
// Without this, a transaction started on stile's pages could be finished
// by anyone through the JSON API (which carries no cookie), and a
// direct-mode one without the apiKey.

var errOtherDoor = &Error{Code: CodeWrongBrowser, Message: "This sign-in was started elsewhere and can only be " +
	"finished where it started. Go back to the application and sign in again."}

// errNoLoginURL refuses the JSON API to a client that signs in on stile's
// own pages: such a client has no page that could call the API, so a
// caller that does is not the client's.
var errNoLoginURL = &Error{Code: CodeNotEnabled, Message: "The JSON login API is only for applications with their own login page."}

var (
	errNoLoginToken = &Error{Code: CodeInvalidRequest, Message: "The loginToken is missing. Send the loginToken that stile " +
		"put in the login page's address, beside authRequestID."}
	errLoginToken = &Error{Code: CodeWrongBrowser, Message: "This sign-in was started in another browser, or the loginToken " +
		"is not this sign-in's. Go back to the application and sign in again."}
)

// loginToken is what the JSON API's first call must show for an auth
// request: a MAC over the request and the binding /login recorded on it.
// /login appends it to the client's login_url in the bound browser, so only
// the page that browser was sent to can read it.
//
// It closes a login CSRF: the binding alone does not say who calls the API.
// An attacker could open his own auth request in the victim's browser
// (a navigation or popup to /login?authRequestID=…), so binding it to the
// victim; sign in as himself through the API from his own machine; and
// send the victim's browser, the bound one, to the ticket. He never sees
// the token: it lands, cross-origin, on the client's page in the victim's
// browser. If he opens /login in his own browser instead, that browser is
// bound and the victim's cannot redeem the ticket.
//
// Stateless: any instance computes it from the master key. Reopening /login
// in the same browser gives the same token, another browser none (the
// request is bound already). The request is answered once, so the token
// dies with it.
func (f *Flow) loginToken(ar *storage.AuthRequest) string {
	b64 := base64.RawURLEncoding.EncodeToString
	return b64(mac(f.keys.LoginToken, "api-login", ar.ID, b64(ar.BindingHash)))
}

// checkLoginToken compares token with ar's, in constant time. Nothing has
// been checked or stored yet: a refusal costs no password check and leaves
// no transaction.
func (f *Flow) checkLoginToken(ctx context.Context, ar *storage.AuthRequest, token []byte) error {
	reason := ""
	switch {
	case len(token) == 0:
		reason = "no loginToken"
	case !hmac.Equal(token, []byte(f.loginToken(ar))):
		reason = "wrong loginToken"
	default:
		return nil
	}
	f.log.Info("login refused", "step", "password", "reason", reason, "door", storage.DoorAPI, "auth_request", ar.ID,
		"client", ar.ClientID, "remote", clientip.From(ctx))
	if len(token) == 0 {
		return errNoLoginToken
	}
	return errLoginToken
}

// authRequestDoor checks an open authorization request against the door
// asking, with that door's proof: the binding cookie's MAC for the pages,
// the loginToken for the JSON API. Stile's pages bind the request to the
// browser (the first to arrive owns it) and refuse any other. The JSON API
// has no cookie to show (the client's page calls it cross-site without
// credentials): the request must already be bound by the /login hand-off,
// the caller must hold the loginToken that only the bound browser's page
// received, and the browser proves itself again where the login turns into
// a session (the ticket, the callback).
func (f *Flow) authRequestDoor(ctx context.Context, ar *storage.AuthRequest, binding []byte, door string) (*storage.AuthRequest, error) {
	if challengeRequest(ar) { // the challenge endpoint's own: no browser door opens it
		return nil, errOtherDoor
	}
	switch door {
	case storage.DoorPages:
		if len(binding) == 0 { // a cookieless client must not bind the request to "nothing"
			return nil, fail(CodeWrongBrowser, msgWrongBrowser)
		}
		bound, err := f.db.BindAuthRequest(ctx, ar.ID, binding)
		if err != nil {
			return nil, internal(err)
		}
		if !hmac.Equal(bound, binding) {
			return nil, fail(CodeWrongBrowser, msgWrongBrowser)
		}
		ar.BindingHash = bound
		return ar, nil
	case storage.DoorAPI:
		if len(ar.BindingHash) == 0 {
			return nil, fail(CodeInvalidRequest, "Start the sign-in from the application: it goes through /login first.")
		}
		c, err := f.db.GetClient(ctx, ar.ClientID)
		if err != nil {
			return nil, internal(err)
		}
		if c.LoginURL == "" {
			return nil, errNoLoginURL
		}
		if err := f.checkLoginToken(ctx, ar, binding); err != nil {
			return nil, err
		}
		return ar, nil
	}
	return nil, internal(fmt.Errorf("open auth request %s: no door %q", ar.ID, door))
}

// checkDoor refuses a transaction to every door but its own, and to its
// own door without the binding that door proves.
func checkDoor(tx *storage.LoginTransaction, binding []byte, door string) error {
	if tx.Door != door {
		return errOtherDoor
	}
	switch door {
	case storage.DoorAPI:
		return nil // the browser proves itself at the ticket and the callback
	case storage.DoorPages, storage.DoorDirect, storage.DoorChallenge:
		// An empty binding never matches, not even a transaction stored
		// without one.
		if len(binding) > 0 && hmac.Equal(tx.BindingHash, binding) {
			return nil
		}
		if door == storage.DoorChallenge {
			return errChallengeBinding
		}
		if door == storage.DoorDirect {
			return fail(CodeWrongBrowser, "The transaction was opened with another client's apiKey.")
		}
		return fail(CodeWrongBrowser, msgWrongBrowser)
	}
	return internal(fmt.Errorf("open transaction %s: no door %q", tx.ID, door))
}
