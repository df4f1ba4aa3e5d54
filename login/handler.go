package login

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"
	"github.com/stile-id/stile/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages are parsed once, each page with the shared layout.
var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"password", "otp", "message", "consent", "enroll", "enroll_secret", "forgot", "reset", "code",
		"signup", "signup_step"} {
		out[name] = template.Must(template.ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}()

// Handler serves stile's own login pages. It holds no login logic: each
// handler decodes the form, calls one step of the Flow, and renders.
//
//	GET  /login?authRequestID=…   hand-off from /authorize: bind, then the password form
//	POST /login                    username + password → 303 to the code form
//	GET  /login/otp?transactionID=… the code form
//	POST /login/otp                otp → a new SSO session; 303 to the consent page or the callback
//	GET  /login/consent?authRequestID=… what a third-party client asks for
//	POST /login/consent            allow or deny → 303 to the callback
//	POST /login/cancel             "Back to <app>": access_denied → 303 to the callback (login/cancel.go)
//	GET  /account                   the signed-in user's consents; withdraw one, or sign out
type Handler struct {
	flow      *Flow
	binder    *Binder
	sessions  *Sessions
	log       *slog.Logger
	origins   originSet  // every client's web origins, for the JSON API's preflights
	authorize Authorizer // reads access tokens for the self-service API; nil: off
}

// NewHandler returns the login handler: stile's pages, the JSON API, the
// direct mode and the self-service API (if authorize is not nil).
func NewHandler(flow *Flow, binder *Binder, sessions *Sessions, authorize Authorizer, log *slog.Logger) *Handler {
	return &Handler{flow: flow, binder: binder, sessions: sessions, authorize: authorize, log: log}
}

// Mount adds the login routes to r.
func (h *Handler) Mount(r *mux.Router) {
	csrf := http.NewCrossOriginProtection()
	h.mountAPI(r) // before /login's pages, whose prefix it shares
	h.mountDirect(r)
	h.mountChallenge(r)
	s := r.PathPrefix("/login").Subrouter()
	s.Use(securityHeaders)
	s.HandleFunc("", h.showPassword).Methods(http.MethodGet, http.MethodHead)
	s.Handle("", csrf.Handler(http.HandlerFunc(h.submitPassword))).Methods(http.MethodPost)
	s.HandleFunc("/otp", h.showOTP).Methods(http.MethodGet, http.MethodHead)
	s.Handle("/otp", csrf.Handler(http.HandlerFunc(h.submitOTP))).Methods(http.MethodPost)
	s.Handle("/otp/resend", csrf.Handler(http.HandlerFunc(h.resendOTP))).Methods(http.MethodPost)
	s.Handle("/cancel", csrf.Handler(http.HandlerFunc(h.cancel))).Methods(http.MethodPost)
	s.HandleFunc("/consent", h.showConsent).Methods(http.MethodGet, http.MethodHead)
	s.Handle("/consent", csrf.Handler(http.HandlerFunc(h.submitConsent))).Methods(http.MethodPost)
	s.HandleFunc("/session", h.claimSession).Methods(http.MethodGet)
	h.mountForgot(s, csrf)
	h.mountPasswordless(s, csrf)
	h.mountSelfService(r) // before /account's pages, whose prefix it shares
	h.mountAccount(r, csrf)
	h.mountEnrollment(r, csrf)
	h.mountSignup(s, csrf)
	static, _ := fs.Sub(staticFS, "static")
	s.PathPrefix("/static/").Handler(http.StripPrefix("/login/static/", http.FileServerFS(static)))
	h.answerWrongMethodsOnPages(r) // the JSON APIs answer theirs above
}

// securityHeaders are on every login page: no framing, no inline script,
// no referrer leaking IDs, no caching of pages that carry transaction IDs.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// page is what the templates see.
type page struct {
	Title, ClientName, Error, Message      string
	AuthRequestID, TransactionID, Username string
	Scopes                                 []scopeText       // consent
	Consents                               []storage.Consent // account
	Token, Secret, URL, FormAction         string            // enrolment
	Resend                                 bool              // the code can be sent again
	Choose, Chosen                         bool              // enrolment: choose a password; re-enter the one chosen
	QR                                     template.URL      // enrolment: a data: URL of a PNG
	IdentifierLabel, IdentifierType        string            // the sign-in form's identifier (SignInWith); Passwordless: offer a code
	Passwordless                           bool
	Signup, AskUsername                    bool   // the client offers sign-up; sign-up: choose another username
	SignupID, Email                        string // sign-up
	Recovery                               bool   // the code form takes a recovery code (a text field)
	CancelID                               string // the request "Back to <app>" ends (login/cancel.go)
}

func (h *Handler) showPassword(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	begun, err := h.flow.Begin(r.Context(), id, h.binder.Ensure(w, r), h.sessions.Current(r))
	if err != nil {
		h.fail(w, r, err, page{Title: "Sign in"})
		return
	}
	if begun.Next != nil {
		h.follow(w, r, begun.Next)
		return
	}
	h.render(w, http.StatusOK, "password", h.signInPage(r.Context(), page{Title: "Sign in", ClientName: h.flow.ClientName(r.Context(), id),
		AuthRequestID: id, Username: begun.LoginHint}))
}

func (h *Handler) submitPassword(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("authRequestID")
	binding, _ := h.binder.Get(r)
	in := Credentials{
		AuthRequestID: id,
		Binding:       binding,
		Door:          storage.DoorPages,
		Username:      r.PostFormValue("username"),
		Password:      r.PostFormValue("password"),
		Device:        h.flow.devices.read(r),
		RemoteAddr:    r.RemoteAddr,
	}
	if cur := h.sessions.Current(r); cur != nil {
		in.Replaces = cur.ID
	}
	ch, err := h.flow.Authenticate(r.Context(), in)
	if err != nil {
		h.fail(w, r, err, page{Title: "Sign in", ClientName: h.flow.ClientName(r.Context(), id),
			AuthRequestID: id, Username: r.PostFormValue("username")})
		return
	}
	if ch.Next != nil {
		h.follow(w, r, ch.Next)
		return
	}
	h.toStep(w, r, ch.TransactionID, id)
}

// follow sends the browser where a finished step leads, with its new
// session cookie if the step started a session, and a fresh device cookie
// if it completed a sign-in (login/device.go).
func (h *Handler) follow(w http.ResponseWriter, r *http.Request, next *Next) {
	if next == nil { // only a browser login has one; the doors keep others out
		h.fail(w, r, internal(errors.New("login page: the step finished without a next step")), page{Title: "Sign in"})
		return
	}
	if next.SessionCookie != "" {
		h.sessions.setCookie(w, next.SessionCookie)
		h.flow.devices.issue(w, next.UserID)
	}
	if next.ConsentFor != "" {
		http.Redirect(w, r, "/login/consent?"+url.Values{"authRequestID": {next.ConsentFor}}.Encode(), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, next.RedirectURI, http.StatusSeeOther)
}

// fail renders a failed step with its status. Errors the user can fix
// re-show the form; the others end on a message page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error, p page) {
	e := AsError(err)
	if e.Code == CodeServerError {
		h.log.ErrorContext(r.Context(), "login page", "path", r.URL.Path, "err", err)
	}
	e.setRetryAfter(w)
	p.Error = e.Message
	switch {
	case e.Code == CodeInvalidCredentials || (e.Code == CodeInvalidRequest || e.Code == CodeThrottled || e.Code == CodeBusy) && p.AuthRequestID != "":
		h.render(w, e.Status(), "password", h.signInPage(r.Context(), p))
	default:
		// The login cannot continue here. Offer a fresh start only where one
		// is possible (a dead transaction of a still-open request), and the
		// way back to the application where this browser may take it.
		h.stopped(w, r, e, p.AuthRequestID, e.Restart)
	}
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, p page) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.log.Error("render login page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	buf.WriteTo(w)
}
