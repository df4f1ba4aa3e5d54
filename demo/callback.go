package demo

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// result is what the callback page shows after a sign-in.
type result struct{ RawAccess, IDToken, AccessToken, Userinfo string }

// problem is an error page: what happened and what to do, in the demo's
// own words. The library's and Go's error text goes to the log only.
type problem struct{ Title, What, Todo, Code string }

func (h *Handler) callback(c Client, callback, start string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if res, ok := h.results.again(r); ok {
			h.render(w, http.StatusOK, view{Result: &res, Again: start})
			return
		}
		p, err := h.relyingParty(r, c, callback, start)
		if err != nil {
			h.fail(w, http.StatusBadGateway, unreachable(h.cfg.Issuer), start, "discovery", err)
			return
		}
		h.exchange(w, r, p, start)
	}
}

// exchange answers the callback: the code for tokens, then the claims page,
// kept for a reload.
func (h *Handler) exchange(w http.ResponseWriter, r *http.Request, p rp.RelyingParty, start string) {
	show := func(w http.ResponseWriter, r *http.Request, tokens *oidc.Tokens[*oidc.IDTokenClaims], _ string, _ rp.RelyingParty, info *oidc.UserInfo) {
		var access map[string]any
		if _, err := oidc.ParseToken(tokens.AccessToken, &access); err != nil {
			access = map[string]any{"note": "opaque access token: a backend asks /oauth/introspect"}
		}
		res := result{
			RawAccess:   tokens.AccessToken,
			IDToken:     pretty(tokens.IDTokenClaims),
			AccessToken: pretty(access),
			Userinfo:    pretty(info),
		}
		h.results.keep(w, r, res)
		h.render(w, http.StatusOK, view{Result: &res, Again: start})
	}
	rp.CodeExchangeHandler(rp.UserinfoCallback(show), p).ServeHTTP(w, r)
}

func pretty(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "(this could not be shown)"
	}
	return string(b)
}

// unauthorized renders the library's failures at the callback (and at the
// start of a sign-in), which it describes with its own text: the prefix
// says which step failed, and the page says what that means.
func (h *Handler) unauthorized(start string) rp.UnauthorizedHandler {
	return func(w http.ResponseWriter, r *http.Request, desc, _ string) {
		status, pr := http.StatusBadGateway, problem{
			Title: "Sign-in failed",
			What:  "The demo client could not finish the sign-in with stile.",
			Todo:  "Sign in again. If this keeps happening, the server's log says what went wrong.",
		}
		switch {
		case strings.HasPrefix(desc, "failed to get state"), strings.HasPrefix(desc, "failed to get code verifier"):
			status, pr = http.StatusBadRequest, problem{
				Title: "This sign-in is over",
				What: "This address finished a sign-in that has already been shown, or that was started in another browser, " +
					"or whose result the demo no longer keeps (after ten minutes, or after stile restarted). " +
					"An authorization code works only once, in the browser that started the sign-in.",
				Todo: "Sign in again to see fresh tokens.",
			}
		case strings.HasPrefix(desc, "failed to exchange token"):
			status, pr = http.StatusBadRequest, problem{
				Title: "Sign-in failed",
				What:  "stile refused to exchange the authorization code for tokens: it may have expired (codes last a minute) or been used already.",
				Todo:  "Sign in again.",
			}
		case strings.HasPrefix(desc, "failed to create"):
			status = http.StatusInternalServerError
			pr.What = "The demo client could not start a sign-in."
		}
		h.fail(w, status, pr, start, "sign-in", errorText(desc))
	}
}

// refused renders an error stile sent back to the callback instead of a
// code (RFC 6749 §4.1.2.1). Its code is shown; its description is stile's
// to word and goes to the log.
func (h *Handler) refused(start string) rp.ErrorHandler {
	return func(w http.ResponseWriter, r *http.Request, code, desc, _ string) {
		pr := problem{Title: "Sign-in not completed", Todo: "Sign in again."}
		switch code {
		case "access_denied":
			pr.What = "The sign-in was cancelled or refused, so stile sent no authorization code."
		default:
			pr.What = "stile answered the demo client with an error instead of an authorization code."
		}
		pr.Code = code
		h.fail(w, http.StatusBadRequest, pr, start, "sign-in refused", errorText(code+": "+desc))
	}
}

// unreachable is the page for a demo client that cannot discover stile.
func unreachable(issuer string) problem {
	return problem{
		Title: "stile cannot be reached",
		What:  "The demo client could not read stile's discovery document at " + issuer + "/.well-known/openid-configuration.",
		Todo:  "Check that --issuer is the address this server is reached at, then sign in again.",
	}
}

type errorText string

func (e errorText) Error() string { return string(e) }

// fail logs the detail and renders the problem with a way to sign in again.
func (h *Handler) fail(w http.ResponseWriter, status int, pr problem, start, step string, err error) {
	h.cfg.Log.Warn("demo client: "+step+" failed", "err", err)
	h.render(w, status, view{Problem: &pr, Again: start})
}
