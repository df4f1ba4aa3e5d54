package op

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stile-id/stile/storage"
)

// SessionEnder ends SSO sessions; login.Sessions is one.
type SessionEnder interface {
	// End ends the session with this ID (an ID token's sid).
	End(w http.ResponseWriter, r *http.Request, id string) error
	// EndCurrent ends the browser's own session, if any.
	EndCurrent(w http.ResponseWriter, r *http.Request) (*storage.Session, error)
}

// SignedOutPath is where a logout without a registered redirect ends.
const SignedOutPath = "/signed-out"

// serveEndSession is RP-initiated logout (OpenID Connect RP-Initiated
// Logout 1.0). The request is validated as the library would: an
// id_token_hint must verify (an expired one is accepted), and a
// post_logout_redirect_uri must be registered for the hint's or the given
// client. With a valid hint the session it names (its sid) ends at once.
// Without one, nothing ends until the user confirms on a page posted back
// from stile itself: otherwise any site could sign users out.
func (p *Provider) serveEndSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, err := zop.ParseEndSessionRequest(r, p.zop.Decoder())
	if err != nil {
		p.log.InfoContext(ctx, "sign-out request refused", "detail", err.Error(), "remote", r.RemoteAddr)
		renderProblem(w, p.endSessionProblem(r, nil))
		return
	}
	v, err := zop.ValidateEndSessionRequest(ctx, req, p.zop)
	if err != nil {
		p.log.InfoContext(ctx, "sign-out request refused", "detail", err.Error(), "client", req.ClientID, "remote", r.RemoteAddr)
		renderProblem(w, p.endSessionProblem(r, req))
		return
	}
	if v.IDTokenHintClaims == nil {
		if p.stays(r) {
			p.stay(w, r, req, v)
			return
		}
		if !p.confirmed(r) {
			p.renderConfirm(w, r, req)
			return
		}
		s, err := p.sessions.EndCurrent(w, r)
		p.logLogout(r, s, err)
	} else if err := p.endHinted(w, r, v.IDTokenHintClaims); err != nil {
		p.log.ErrorContext(ctx, "end session", "err", err)
		renderProblem(w, problemServer)
		return
	}
	http.Redirect(w, r, v.RedirectURI, http.StatusFound)
}

// endSessionProblem says why a sign-out request was refused, from the
// request: an id_token_hint stile cannot verify, a client it does not know,
// or a post_logout_redirect_uri not registered for the client. Nothing was
// ended. The way back is the application's registered address if the
// request names one, else the account page (where the user can sign out).
func (p *Provider) endSessionProblem(r *http.Request, req *oidc.EndSessionRequest) problem {
	pr := problem{Status: http.StatusBadRequest, Heading: "Sign-out request not valid",
		What:   "The application sent a sign-out request that stile cannot accept, so nothing was signed out.",
		Advice: "You may still be signed in. To sign out, open your stile account and sign out there."}.toAccount()
	pr.BackLabel = "Go to your stile account to sign out"
	if req == nil {
		return pr
	}
	c, err := p.db.GetClient(r.Context(), req.ClientID)
	switch {
	case req.ClientID != "" && err != nil:
		pr.What = "The sign-out request names an application that is not registered with stile, so nothing was signed out."
	case req.IdTokenHint != "" && req.PostLogoutRedirectURI != "" && err == nil && !slices.Contains(c.PostLogoutRedirectURIs, req.PostLogoutRedirectURI):
		pr.What = "The application asked to return to an address (post_logout_redirect_uri) that is not registered for it, so nothing was signed out."
	case req.IdTokenHint != "":
		pr.What = "The sign-out request carries a sign-in token (id_token_hint) that stile cannot verify, so nothing was signed out."
	case req.PostLogoutRedirectURI != "":
		pr.What = "The application asked to return to an address (post_logout_redirect_uri) that is not registered for it, so nothing was signed out."
	}
	return pr
}

// confirmed reports whether this is the confirmation form, posted from
// stile's own page.
func (p *Provider) confirmed(r *http.Request) bool {
	return r.Method == http.MethodPost && r.PostFormValue("confirm") == "yes" && p.csrf.Check(r) == nil
}

// endHinted ends the session the ID token names, or, for a token without a
// sid, the browser's session if it is the token's user's.
func (p *Provider) endHinted(w http.ResponseWriter, r *http.Request, claims *oidc.IDTokenClaims) error {
	if claims.SessionID != "" {
		p.log.InfoContext(r.Context(), "signed out", "user", claims.Subject, "session", claims.SessionID, "client", claims.AuthorizedParty)
		return p.sessions.End(w, r, claims.SessionID)
	}
	s, err := p.sessions.EndCurrent(w, r)
	p.logLogout(r, s, err)
	return nil
}

func (p *Provider) logLogout(r *http.Request, s *storage.Session, err error) {
	if s != nil {
		p.log.InfoContext(r.Context(), "signed out", "user", s.UserID, "session", s.ID)
	} else if err != nil {
		p.log.InfoContext(r.Context(), "sign-out without a session", "reason", err.Error())
	}
}

var confirmTemplate = template.Must(template.New("confirm").Parse(pageHead + `<h1>Sign out?</h1>
<p>{{with .ClientName}}<strong>{{.}}</strong> asks{{else}}An application asks{{end}} to sign you out of stile.</p>
<form method="post" action="/end_session">
{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<input type="hidden" name="confirm" value="yes">
<button type="submit">Sign out</button>
<button type="submit" name="stay" value="yes" class="secondary">Stay signed in</button>
</form>` + pageFoot))

// renderConfirm asks the user to confirm, carrying the request's
// parameters through the form. Both buttons post the same form: "Stay
// signed in" adds stay=yes (see stays).
func (p *Provider) renderConfirm(w http.ResponseWriter, r *http.Request, req *oidc.EndSessionRequest) {
	fields := url.Values{}
	for k, v := range map[string]string{"client_id": req.ClientID, "post_logout_redirect_uri": req.PostLogoutRedirectURI,
		"state": req.State} {
		if v != "" {
			fields.Set(k, v)
		}
	}
	flat := map[string]string{}
	for k := range fields {
		flat[k] = fields.Get(k)
	}
	renderPage(w, http.StatusOK, confirmTemplate, struct {
		Fields     map[string]string
		ClientName string
	}{flat, p.clientName(r, req.ClientID)})
}

// clientName is the client's display name (its ID if it has none), or ""
// for no client. The request was validated: a client_id it names exists.
func (p *Provider) clientName(r *http.Request, clientID string) string {
	if clientID == "" {
		return ""
	}
	c, err := p.db.GetClient(r.Context(), clientID)
	if err != nil {
		return ""
	}
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// stays reports whether the user chose "Stay signed in" on stile's own
// confirmation page. It is checked before confirmed: that form also
// carries confirm=yes.
func (p *Provider) stays(r *http.Request) bool {
	return r.Method == http.MethodPost && r.PostFormValue("stay") == "yes" && p.csrf.Check(r) == nil
}

// stay ends nothing. The browser goes back to the application's
// post_logout_redirect_uri (registered, checked by the validation, with
// state) if it gave one; otherwise a page says the user is still signed in.
func (p *Provider) stay(w http.ResponseWriter, r *http.Request, req *oidc.EndSessionRequest, v *zop.EndSessionRequest) {
	p.log.InfoContext(r.Context(), "sign-out declined", "client", v.ClientID)
	if req.PostLogoutRedirectURI != "" && v.ClientID != "" {
		http.Redirect(w, r, v.RedirectURI, http.StatusSeeOther)
		return
	}
	renderPage(w, http.StatusOK, stayedTemplate, nil)
}

var stayedTemplate = template.Must(template.New("stayed").Parse(pageHead + `<h1>Still signed in</h1>
<p>You are still signed in to stile. Nothing was ended: go back to your application and carry on.</p>
<p class="aside"><a href="/account">Your account</a></p>` + pageFoot))

var signedOutTemplate = template.Must(template.New("signed-out").Parse(pageHead +
	`<h1>Signed out</h1><p>You are signed out of stile.</p>
<p>To sign in again, open an application that uses your account and sign in there.</p>` + pageFoot))

func (p *Provider) serveSignedOut(w http.ResponseWriter, _ *http.Request) {
	renderPage(w, http.StatusOK, signedOutTemplate, nil)
}
