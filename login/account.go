package login

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/storage"
)

// The account page: a signed-in user (the browser's SSO session) sees and
// changes their own account — the HTML face of the self-service API, on
// plain forms (no script), each POST behind CrossOriginProtection.
//
//	GET  /account                       everything below, in sections
//	POST /account/code                  method → a step-up code sent by EMAIL or SMS
//	POST /account/totp                  otp → a new authenticator to scan (account_totp.html)
//	POST /account/totp/confirm          otp (from the new app) → it becomes the user's
//	POST /account/totp/remove           otp (from the app, or a recovery code) → removed
//	POST /account/preferred             method → the second factor asked for first
//	POST /account/recovery-codes        otp → ten new codes, shown once (account_codes.html)
//	POST /account/password              current, password, confirm, otp → changed; every session ends
//	POST /account/email                 email, otp → a code sent to the new address (account_email.html)
//	POST /account/email/confirm         code → the new address is the user's; the old one is told
//	POST /account/sessions/end          sessionID → that session ends
//	POST /account/sessions/end-others   every session but this one ends
//	POST /account/consents/withdraw     clientID → withdraw (its tokens are revoked)
//	POST /account/signout               end this session
//
// Every change takes a fresh code (account_stepup.go); the password also
// the current password. Ending sessions, withdrawing a consent and choosing
// the preferred method take none: they give nothing to whoever holds the
// session. The page asks for no recent sign-in beyond the live session
// (idle and absolute limits): the fresh code is the step-up.
func (h *Handler) mountAccount(r *mux.Router, csrf *http.CrossOriginProtection) {
	a := r.PathPrefix("/account").Subrouter()
	a.Use(securityHeaders)
	a.Handle("", h.signedIn(h.showAccount)).Methods(http.MethodGet, http.MethodHead)
	for path, fn := range map[string]func(http.ResponseWriter, *http.Request, *storage.Session, *storage.User){
		"/code":                h.accountSendCode,
		"/totp":                h.accountAddTOTP,
		"/totp/confirm":        h.accountConfirmTOTP,
		"/totp/remove":         h.accountRemoveTOTP,
		"/preferred":           h.accountPreferred,
		"/recovery-codes":      h.accountRecoveryCodes,
		"/password":            h.accountPassword,
		"/email":               h.accountEmail,
		"/email/confirm":       h.accountConfirmEmail,
		"/sessions/end":        h.accountEndSession,
		"/sessions/end-others": h.accountEndOthers,
		"/consents/withdraw":   h.withdrawConsent,
	} {
		a.Handle(path, csrf.Handler(h.signedIn(fn))).Methods(http.MethodPost)
	}
	a.Handle("/signout", csrf.Handler(http.HandlerFunc(h.signOut))).Methods(http.MethodPost)
}

const msgSignedOut = "You are not signed in. Sign in through an application that uses this account, then come back."

// accountPages are the account page and its one-off steps, each with the
// shared layout.
var accountPages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"account", "account_totp", "account_codes", "account_email"} {
		out[name] = template.Must(template.ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}()

// accountView is what the account templates see (the layout's Title,
// ClientName and Error included).
type accountView struct {
	Title, ClientName, Error, Message string
	Username, Email, PendingEmail     string
	TOTP                              bool
	RecoveryLeft                      int
	Preferred                         string
	Choices                           []string  // methods the user can prefer
	Channels                          []channel // where a step-up code can be sent
	Sessions                          []sessionRow
	Consents                          []storage.Consent
	Secret, URL                       string       // a new authenticator
	QR                                template.URL // its data: URL
	Codes                             []string     // new recovery codes
}

type channel struct{ Method, To string }

type sessionRow struct {
	ID, Created, LastSeen, Methods string
	Current                        bool
}

// signedIn runs fn for the browser's session and its user; signed out, it
// says how to sign in.
func (h *Handler) signedIn(fn func(http.ResponseWriter, *http.Request, *storage.Session, *storage.User)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := h.sessions.Current(r)
		if s == nil {
			h.renderAccount(w, http.StatusUnauthorized, "account", accountView{Message: msgSignedOut})
			return
		}
		u, err := h.flow.db.GetUser(r.Context(), s.UserID)
		if err != nil {
			h.accountFail(w, r, nil, nil, internal(err))
			return
		}
		fn(w, r, s, u)
	})
}

func (h *Handler) showAccount(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	h.accountPage(w, r, s, u, http.StatusOK, accountView{Message: doneMessages[r.URL.Query().Get("done")]})
}

// doneMessages are what the page says after a change redirected to it.
var doneMessages = map[string]string{
	"code_sent":      "We sent you a code. Enter it with the change you make.",
	"totp_added":     "Your authenticator app is set up.",
	"totp_removed":   "Your authenticator app was removed.",
	"preferred":      "Your preferred second factor was changed.",
	"email_changed":  "Your email address was changed.",
	"session_ended":  "The session was signed out.",
	"sessions_ended": "Every other session was signed out.",
	"consent":        "The application's access was withdrawn.",
}

// accountPage renders the account page for the session's user, with v's
// message or error.
func (h *Handler) accountPage(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User, status int, v accountView) {
	if err := h.fillAccount(r, s, u, &v); err != nil {
		h.log.ErrorContext(r.Context(), "account page", "path", r.URL.Path, "err", err)
		h.renderAccount(w, http.StatusInternalServerError, "account", accountView{Error: AsError(internal(err)).Message})
		return
	}
	h.renderAccount(w, status, "account", v)
}

// fillAccount loads what the page shows.
func (h *Handler) fillAccount(r *http.Request, s *storage.Session, u *storage.User, v *accountView) error {
	ctx := r.Context()
	f, err := h.flow.accounts.Factors(ctx, u.ID)
	if err != nil {
		return err
	}
	has, err := h.flow.factorsOf(ctx, u)
	if err != nil {
		return err
	}
	v.Username, v.Email, v.TOTP, v.RecoveryLeft, v.Preferred = u.Username, u.Email, f.TOTP, f.RecoveryCodesLeft, u.Preferred
	for _, m := range []string{MethodTOTP, MethodEmail, MethodSMS} {
		if has.can(m) {
			v.Choices = append(v.Choices, m)
		}
	}
	channels, err := h.flow.proofChannels(ctx, u)
	if err != nil {
		return err
	}
	for _, m := range channels {
		_, to, _ := h.flow.sender(m, u)
		v.Channels = append(v.Channels, channel{Method: m, To: mask(m, to)})
	}
	if v.PendingEmail, err = h.flow.pendingEmail(ctx, u); err != nil {
		return err
	}
	all, err := h.flow.accounts.Sessions(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, x := range all.Sessions {
		if !x.Active(h.flow.now(), h.sessions.Idle) {
			continue
		}
		v.Sessions = append(v.Sessions, sessionRow{ID: x.ID, Created: when(x.CreatedAt), LastSeen: when(x.LastSeenAt),
			Methods: strings.Join(x.AMR, ", "), Current: x.ID == s.ID})
	}
	v.Consents, err = h.flow.db.ListConsents(ctx, u.ID)
	return err
}

// accountFail shows a refused change on the account page (or, without a
// user, alone), with its status.
func (h *Handler) accountFail(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User, err error) {
	e := AsError(err)
	if e.Code == CodeServerError {
		h.log.ErrorContext(r.Context(), "account page", "path", r.URL.Path, "err", err)
	}
	e.setRetryAfter(w)
	if u == nil {
		h.renderAccount(w, e.Status(), "account", accountView{Error: e.Message})
		return
	}
	h.accountPage(w, r, s, u, e.Status(), accountView{Error: e.Message})
}

func (h *Handler) renderAccount(w http.ResponseWriter, status int, name string, v accountView) {
	if v.Title == "" {
		v.Title = "Your account"
	}
	var buf bytes.Buffer
	if err := accountPages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		h.log.Error("render account page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	buf.WriteTo(w)
}

func (h *Handler) withdrawConsent(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	clientID := r.PostFormValue("clientID")
	err := h.flow.db.WithdrawConsent(r.Context(), s.UserID, clientID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.accountFail(w, r, s, u, internal(err))
		return
	}
	h.log.Info("consent withdrawn", "user", s.UserID, "client", clientID)
	http.Redirect(w, r, "/account?done=consent", http.StatusSeeOther)
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	s, err := h.sessions.EndCurrent(w, r)
	if err != nil && !errors.Is(err, ErrNoSession) {
		h.fail(w, r, internal(err), page{Title: "Sign out"})
		return
	}
	if s != nil {
		h.log.Info("signed out", "user", s.UserID, "session", s.ID)
	}
	h.render(w, http.StatusOK, "message", page{Title: "Signed out", Message: "You are signed out of stile. " +
		"To sign in again, open an application that uses this account and sign in there."})
}
