package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// apiNext is where the browser goes after the API's last step. A login
// that started a session sends the browser through stile's /login/session
// with a one-time ticket first: a cross-site call cannot set stile's
// cookie, a top-level visit can.
func (h *Handler) apiNext(ctx context.Context, next *Next, authRequestID string) (string, error) {
	if next == nil || authRequestID == "" { // only a browser login has them; the doors keep others out
		return "", internal(errors.New("JSON API: the login finished without a next step"))
	}
	if next.SessionID == "" {
		return next.RedirectURI, nil
	}
	ticket, err := h.sessions.handover(ctx, next.SessionID, authRequestID)
	if err != nil {
		return "", internal(err)
	}
	q := url.Values{"ticket": {ticket}, "authRequestID": {authRequestID}}
	if next.ConsentFor != "" {
		q.Set("consent", "1")
	}
	return h.flow.issuer + "/login/session?" + q.Encode(), nil
}

// claimSession redeems a JSON API login's ticket: the browser gets its
// session cookie, and goes on to the consent page or the callback. Only the
// browser the authorization request is bound to (the binding cookie of the
// /login hand-off) may redeem it. Any other gets an error page and no
// cookie, and the ticket is burnt: otherwise an attacker who signed in as
// himself could sign a victim's browser in as him with a link (login CSRF),
// or whoever saw a victim's ticket could take the victim's session.
func (h *Handler) claimSession(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ticket, id := q.Get("ticket"), q.Get("authRequestID")
	p := page{Title: "Sign in"}
	if ticket == "" || id == "" {
		h.fail(w, r, fail(CodeExpired, msgExpired), p)
		return
	}
	if err := h.binder.Check(r, h.flow.db, id); err != nil {
		if rerr := h.sessions.refuse(r.Context(), ticket, id); rerr != nil {
			h.fail(w, r, internal(rerr), p)
			return
		}
		h.log.Info("session hand-over refused", "reason", err.Error(), "auth_request", id, "remote", r.RemoteAddr)
		if errors.Is(err, ErrNotBound) {
			h.fail(w, r, fail(CodeWrongBrowser, msgWrongBrowser), p)
			return
		}
		h.fail(w, r, fail(CodeExpired, msgExpired), p)
		return
	}
	sess, err := h.sessions.claim(w, r, ticket, id)
	if err != nil {
		h.fail(w, r, fail(CodeExpired, msgExpired), p)
		return
	}
	// The browser completed a sign-in to this account: on stile's own pages
	// it passes the account-wide failure ceiling from now on, as after a
	// sign-in there (the JSON API itself never sees the cookie).
	h.flow.devices.issue(w, sess.UserID)
	if q.Get("consent") != "" {
		http.Redirect(w, r, "/login/consent?"+url.Values{"authRequestID": {id}}.Encode(), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, h.flow.callbackURL(r.Context(), id), http.StatusSeeOther)
}
