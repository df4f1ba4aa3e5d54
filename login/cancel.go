package login

import (
	"context"
	"crypto/hmac"
	"errors"
	"net/http"

	"github.com/stile-id/stile/storage"
)

// The way back to the application from a sign-in that cannot, or will
// not, go on: the user's "Back to <app>" ends the authorization request
// with access_denied, and the provider's callback sends the browser to the
// client's redirect URI with that error, the request's state and iss — what
// an OAuth client expects when a user declines (RFC 6749 §4.1.2.1).
//
//	POST /login/cancel  authRequestID → 303 to the callback → the client's redirect URI with error=access_denied
//
// Only the browser the request is bound to may end it: the page's form is
// CSRF-guarded like every other, and the request must already carry this
// browser's binding (cancel never binds an unbound request, so a browser
// that never saw the sign-in cannot claim it to end it).

// errCancelOther refuses to end a request bound to another browser, or to none.
var errCancelOther = &Error{Code: CodeWrongBrowser, Message: "This sign-in was started in another browser. " +
	"Go back to the application from the browser you started in."}

// boundRequest returns the open authorization request if it is bound to
// this browser. Nothing is written.
func (f *Flow) boundRequest(ctx context.Context, id string, binding []byte) (*storage.AuthRequest, error) {
	ar, err := f.waitingAuthRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(binding) == 0 || len(ar.BindingHash) == 0 || !hmac.Equal(ar.BindingHash, binding) {
		return nil, errCancelOther
	}
	return ar, nil
}

// Cancel ends the open authorization request bound to this browser with
// access_denied and returns the provider's callback, which answers the
// client with that error.
func (f *Flow) Cancel(ctx context.Context, authRequestID string, binding []byte) (*Next, error) {
	ar, err := f.boundRequest(ctx, authRequestID, binding)
	if err != nil {
		return nil, err
	}
	if err := f.db.FailAuthRequest(ctx, ar.ID, "access_denied"); errors.Is(err, storage.ErrNotFound) {
		return nil, fail(CodeExpired, msgExpired) // answered meanwhile, in another tab
	} else if err != nil {
		return nil, internal(err)
	}
	f.log.Info("sign-in cancelled by the user", "auth_request", ar.ID, "client", ar.ClientID)
	return &Next{RedirectURI: f.callbackURL(ctx, ar.ID)}, nil
}

// cancellable reports whether this browser may end the request: it is
// open and bound to the browser. The pages offer "Back to <app>" only then.
func (f *Flow) cancellable(ctx context.Context, authRequestID string, binding []byte) bool {
	if authRequestID == "" {
		return false
	}
	_, err := f.boundRequest(ctx, authRequestID, binding)
	return err == nil
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("authRequestID")
	binding, _ := h.binder.Get(r)
	next, err := h.flow.Cancel(r.Context(), id, binding)
	if err != nil {
		e := AsError(err)
		if e.Code == CodeServerError {
			h.log.ErrorContext(r.Context(), "login page", "path", r.URL.Path, "err", err)
		}
		// No "Sign in again" and no second "Back to": the request is over or
		// not this browser's.
		h.render(w, e.Status(), "message", page{Title: "Sign-in stopped", Error: e.Message,
			ClientName: h.flow.ClientName(r.Context(), id)})
		return
	}
	http.Redirect(w, r, next.RedirectURI, http.StatusSeeOther)
}

// stopped renders the page a sign-in ends on when it cannot go on here:
// what went wrong, what to do about it, and the ways on that are open to
// this browser — "Sign in again" where the same request can start over
// (restart), "Back to <app>" where the request is open and this browser's.
func (h *Handler) stopped(w http.ResponseWriter, r *http.Request, e *Error, arID string, restart bool) {
	p := page{Title: "Sign-in stopped", Error: e.Message, ClientName: h.flow.ClientName(r.Context(), arID)}
	if restart {
		p.AuthRequestID = arID
	}
	binding, _ := h.binder.Get(r)
	if h.flow.cancellable(r.Context(), arID, binding) {
		p.CancelID = arID
	}
	if e.Code == CodeNoSecondFactor {
		p.Message = msgNoSecondFactorHint
	}
	h.render(w, e.Status(), "message", p)
}

const msgNoSecondFactorHint = "Ask your administrator for an enrolment link: on it you set up an authenticator app, " +
	"then you can sign in here."
