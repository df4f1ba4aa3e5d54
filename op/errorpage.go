package op

import (
	"context"
	"html/template"
	"net/http"
	"slices"
	"strings"
)

// problem is an error page in stile's words: what happened, what to do,
// and a way back. The technical detail goes to the log, never here.
type problem struct {
	Status    int
	Heading   string
	What      string // what happened
	Advice    string // what to do
	BackURL   string // a way back: the application if a valid address is known, else the account page
	BackLabel string
}

// toAccount is the way back when no application address can be trusted.
func (p problem) toAccount() problem {
	p.BackURL, p.BackLabel = "/account", "Go to your stile account"
	return p
}

const startAgain = "Go back to the application and start the sign-in again."

var (
	problemExpired = problem{Status: http.StatusGone, Heading: "Sign-in expired",
		What:   "This sign-in has expired or is already finished.",
		Advice: startAgain}.toAccount()
	problemOtherBrowser = problem{Status: http.StatusForbidden, Heading: "Sign-in started elsewhere",
		What:   "This sign-in was started in another browser.",
		Advice: "Go back to the application and sign in again from this browser."}.toAccount()
	problemServer = problem{Status: http.StatusInternalServerError, Heading: "Something went wrong",
		What:   "Something went wrong on our side; nothing was changed.",
		Advice: "Wait a moment, then try again."}.toAccount()
	problemLimited = problem{Status: http.StatusTooManyRequests, Heading: "Too many sign-ins",
		What:   "Too many sign-in requests came from your network.",
		Advice: "Wait a minute, then go back to the application and try again."}.toAccount()
	problemNotFound = problem{Status: http.StatusNotFound, Heading: "Page not found",
		What:   "There is no page at this address.",
		Advice: "Check the address, or go back to the application and start again."}.toAccount()
	problemMethod = problem{Status: http.StatusMethodNotAllowed, Heading: "Not available",
		What:   "This page cannot be opened this way.",
		Advice: "Go back to the application and start again."}.toAccount()
)

// authorizeProblem says why the library refused an authorization request
// it could not send back to the application (RFC 6749 §4.1.2.1: no
// trustworthy redirect_uri), from the request itself: the facts stile
// checks are what the page explains, whatever text the library used.
func (p *Provider) authorizeProblem(ctx context.Context, r *http.Request) problem {
	const what = "The application sent a sign-in request that stile cannot accept: "
	bad := problem{Status: http.StatusBadRequest, Heading: "Sign-in request not valid",
		Advice: "This is a fault in the application, not in your account. " + startAgain +
			" If it happens again, tell the application's administrator."}.toAccount()
	clientID, redirect := r.Form.Get("client_id"), r.Form.Get("redirect_uri")
	switch {
	case clientID == "":
		bad.What = what + "it does not say which application it is for (client_id is missing)."
		return bad
	}
	c, err := p.db.GetClient(ctx, clientID)
	if err != nil {
		bad.Heading = "Unknown application"
		bad.What = what + "the application it names is not registered with stile."
		return bad
	}
	name := c.Name
	if name == "" {
		name = c.ID
	}
	switch {
	case redirect == "":
		bad.What = what + name + " did not say where to return after the sign-in (redirect_uri is missing)."
	case !slices.Contains(c.RedirectURIs, redirect):
		bad.Heading = "Return address not registered"
		bad.What = what + name + " asked to return to an address (redirect_uri) that is not registered for it, " +
			"so stile will not send you there."
	default:
		bad.What = what + "some of its parameters are missing or not valid."
	}
	return bad
}

var problemTemplate = template.Must(template.New("problem").Parse(pageHead +
	`<h1>{{.Heading}}</h1>
<p class="error" role="alert">{{.What}}</p>
<p>{{.Advice}}</p>
{{with .BackURL}}<p class="aside"><a href="{{.}}">{{$.BackLabel}}</a></p>{{end}}` + pageFoot))

// renderProblem shows an error page.
func renderProblem(w http.ResponseWriter, pr problem) {
	renderPage(w, pr.Status, problemTemplate, pr)
}

// browserPaths are where a person may land; elsewhere (the APIs) a 404 or
// 405 stays JSON.
func apiPath(path string) bool {
	for _, prefix := range []string{"/oauth/", "/login/api/", "/headless/", "/account/api/", "/api/", "/userinfo", "/revoke", "/keys", "/.well-known/"} {
		if strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
}

// notFoundPages turns the library router's plain-text 404 and 405 (the
// provider's catch-all is the last route) into stile's page, or its JSON
// error on an API path.
func notFoundPages(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &capture{ResponseWriter: w}
		next.ServeHTTP(c, r)
		if !c.intercepted {
			return
		}
		switch {
		case c.status != http.StatusNotFound && c.status != http.StatusMethodNotAllowed:
			renderProblem(w, problemServer)
		case apiPath(r.URL.Path) && c.status == http.StatusNotFound:
			writeOAuthError(w, http.StatusNotFound, "not_found", "There is nothing at this address.")
		case apiPath(r.URL.Path):
			writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "This endpoint does not take that method.")
		case c.status == http.StatusNotFound:
			renderProblem(w, problemNotFound)
		default:
			renderProblem(w, problemMethod)
		}
	})
}

// onlyMethods answers a browser path's other methods with 405 and Allow,
// on stile's page.
func onlyMethods(next http.Handler, methods ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(methods, r.Method) {
			w.Header().Set("Allow", strings.Join(methods, ", "))
			renderProblem(w, problemMethod)
			return
		}
		next.ServeHTTP(w, r)
	})
}
