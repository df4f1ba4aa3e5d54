package login

import (
	"context"
	"crypto/hmac"
	"fmt"

	"github.com/stile-id/stile/storage"
)

// One front door per transaction. A login transaction belongs to the door
// that opened it, recorded as storage.LoginTransaction.Door, and every
// other door refuses it:
//
//	door        opens on                                     each step proves
//	DoorPages   an auth request bound at /login (any client) the browser's binding cookie
//	DoorAPI     an auth request bound at /login, of a client  nothing here: the redirectURI (a ticket
//	            with a login_url, from a registered Origin     for /login/session) works only in the
//	                                                           bound browser, and so does the callback
//	DoorDirect  the client's apiKey (no auth request)         the same client's apiKey
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

// authRequestDoor checks an open authorization request against the door
// asking. Stile's pages bind it to the browser (the first to arrive owns
// it) and refuse any other. The JSON API has no cookie to show (the
// client's page calls it cross-site without credentials): the request must
// already be bound by the /login hand-off, and the browser proves itself
// where the login turns into a session (the ticket, the callback).
func (f *Flow) authRequestDoor(ctx context.Context, ar *storage.AuthRequest, binding []byte, door string) (*storage.AuthRequest, error) {
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
	case storage.DoorPages, storage.DoorDirect:
		// An empty binding never matches, not even a transaction stored
		// without one.
		if len(binding) > 0 && hmac.Equal(tx.BindingHash, binding) {
			return nil
		}
		if door == storage.DoorDirect {
			return fail(CodeWrongBrowser, "The transaction was opened with another client's apiKey.")
		}
		return fail(CodeWrongBrowser, msgWrongBrowser)
	}
	return internal(fmt.Errorf("open transaction %s: no door %q", tx.ID, door))
}
