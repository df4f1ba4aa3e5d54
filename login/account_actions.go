package login

import (
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"encoding/base64"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/storage"
)

// The account page's changes (account.go has the routes). Each handler
// decodes the form, proves what the change needs, asks the account
// service for it, and renders or redirects back to /account.

// when is how the page shows a time.
func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// eventPasswordSet is the account service's event of a password change.
const eventPasswordSet = "user.password_set"

// recordRefused records a change the page refused at one of its proofs
// (wrong password, wrong or missing code, a lock) in the audit trail; the
// account service records the changes made. Refusals before any proof
// (malformed input) are not recorded, as on the sign-in pages.
func (h *Handler) recordRefused(r *http.Request, typ string, u *storage.User, step string, err error) {
	if e := AsError(err); err != nil && e.Code != CodeInvalidRequest {
		h.flow.recordFor(r.Context(), typ, u, "", err, storage.Attributes{"step": step, "door": "account_page"})
	}
}

// pageActor is the user changing their own account on the page.
func pageActor(r *http.Request, u *storage.User) account.Actor { return actor(r, u, "") }

func (h *Handler) accountSendCode(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	to, err := h.flow.sendStepUp(r.Context(), u, r.PostFormValue("method"))
	if err != nil {
		h.accountFail(w, r, s, u, err)
		return
	}
	h.accountPage(w, r, s, u, http.StatusOK, accountView{Message: "We sent a code to " + to +
		". Enter it with the change you make."})
}

func (h *Handler) accountAddTOTP(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	ctx := r.Context()
	if err := h.flow.proveStepUp(ctx, u, r.PostFormValue("otp")); err != nil {
		h.flow.recordFor(ctx, EventTOTPAdded, u, "", err, storage.Attributes{"step": "proof", "door": "account_page"})
		h.accountFail(w, r, s, u, err)
		return
	}
	e, err := h.flow.pendingTOTP(ctx, u)
	if err != nil {
		h.accountFail(w, r, s, u, err)
		return
	}
	h.renderAccount(w, http.StatusOK, "account_totp", accountView{Title: "Set up an authenticator app", Username: u.Username,
		Secret: e.Secret, URL: e.URL, QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QR))})
}

func (h *Handler) accountConfirmTOTP(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	ctx := r.Context()
	secret, step, err := h.flow.confirmPendingTOTP(ctx, u, strings.TrimSpace(r.PostFormValue("otp")))
	if err != nil {
		h.flow.recordFor(ctx, EventTOTPAdded, u, "", err, storage.Attributes{"method": MethodTOTP, "door": "account_page"})
	} else if err = h.flow.accounts.AddTOTP(ctx, pageActor(r, u), u, secret, step); err != nil {
		err = internal(err)
	}
	h.accountDone(w, r, s, u, err, "totp_added")
}

func (h *Handler) accountRemoveTOTP(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	ctx := r.Context()
	err := h.flow.proveTOTPRemoval(ctx, u, strings.TrimSpace(r.PostFormValue("otp")))
	if err != nil {
		h.flow.recordFor(ctx, EventFactorRemoved, u, "", err, storage.Attributes{"method": MethodTOTP, "door": "account_page"})
	} else if err = h.flow.accounts.RemoveTOTP(ctx, pageActor(r, u), u); err != nil {
		err = internal(err)
	}
	h.accountDone(w, r, s, u, err, "totp_removed")
}

func (h *Handler) accountPreferred(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	ctx := r.Context()
	method := r.PostFormValue("method")
	has, err := h.flow.factorsOf(ctx, u)
	if err == nil && !has.can(method) {
		err = fail(CodeInvalidRequest, "Choose one of the second factors you have.")
	}
	if err == nil {
		if err = h.flow.accounts.SetPreferred(ctx, pageActor(r, u), u, method); err != nil {
			err = internal(err)
		}
	}
	h.accountDone(w, r, s, u, err, "preferred")
}

func (h *Handler) accountRecoveryCodes(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	ctx := r.Context()
	var codes []string
	err := h.flow.proveStepUp(ctx, u, r.PostFormValue("otp"))
	if err != nil {
		h.flow.recordFor(ctx, EventRecoveryCodes, u, "", err, storage.Attributes{"door": "account_page"})
	} else if codes, err = h.flow.accounts.RecoveryCodes(ctx, pageActor(r, u), u.ID); err != nil {
		err = internal(err)
	}
	if err != nil {
		h.accountFail(w, r, s, u, err)
		return
	}
	h.renderAccount(w, http.StatusOK, "account_codes", accountView{Title: "Your new recovery codes", Codes: codes})
}

// accountPassword changes the password: the policy first (costs nothing),
// then the current password (one argon2id in the pool, throttled like a
// sign-in), then the fresh code. The account service ends every session,
// this one too, and revokes the user's tokens.
func (h *Handler) accountPassword(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	ctx := r.Context()
	current, next := r.PostFormValue("current"), r.PostFormValue("password")
	err := account.CheckPasswordPolicy(next)
	if err != nil {
		err = fail(CodeInvalidRequest, "Choose another password: "+err.Error()+".")
	} else if next != r.PostFormValue("confirm") {
		err = fail(CodeInvalidRequest, "The new password and its confirmation differ.")
	} else if current == "" {
		err = fail(CodeInvalidRequest, "Enter your current password.")
	}
	if err == nil {
		var who *storage.User
		who, err = h.flow.checkPassword(ctx, Credentials{Username: u.Username, Password: current,
			Device: h.flow.devices.read(r), RemoteAddr: r.RemoteAddr})
		if err == nil && who.ID != u.ID { // renamed meanwhile: not this user's password
			err = fail(CodeInvalidCredentials, msgInvalidCredentials)
		}
		if e := AsError(err); err != nil && e.Code == CodeInvalidCredentials {
			err = fail(CodeInvalidCredentials, "Your current password is not right.")
		}
		h.recordRefused(r, eventPasswordSet, u, "current_password", err)
	}
	if err == nil {
		err = h.flow.proveStepUp(ctx, u, r.PostFormValue("otp"))
		h.recordRefused(r, eventPasswordSet, u, "proof", err)
	}
	if err == nil {
		if err = h.flow.accounts.SetPassword(ctx, pageActor(r, u), u.ID, next); err != nil {
			var fe *account.FieldError
			if errors.As(err, &fe) {
				err = fail(CodeInvalidRequest, "Choose another password: "+fe.Reason+".")
			} else {
				err = AsError(err)
			}
		}
	}
	if err != nil {
		h.accountFail(w, r, s, u, err)
		return
	}
	h.sessions.Clear(w)
	h.render(w, http.StatusOK, "message", page{Title: "Password changed", Message: "Your password was changed, " +
		"and every session signed out, this one too. Sign in again with your new password."})
}

func (h *Handler) accountEmail(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	ctx := r.Context()
	email := strings.TrimSpace(r.PostFormValue("email"))
	err := account.CheckEmail(email)
	if err != nil {
		err = fail(CodeInvalidRequest, "Enter one email address, like name@example.com.")
	} else if err = h.flow.proveStepUp(ctx, u, r.PostFormValue("otp")); err == nil {
		err = h.flow.startEmailChange(ctx, u, email)
	} else {
		h.recordRefused(r, account.EventEmailChanged, u, "proof", err)
	}
	if err != nil {
		h.accountFail(w, r, s, u, err)
		return
	}
	h.renderAccount(w, http.StatusOK, "account_email", accountView{Title: "Confirm your new email address", PendingEmail: email})
}

func (h *Handler) accountConfirmEmail(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	if err := h.flow.confirmEmailChange(r.Context(), pageActor(r, u), u, r.PostFormValue("code")); err != nil {
		h.recordRefused(r, account.EventEmailChanged, u, "new_address_code", err)
		h.accountFail(w, r, s, u, err)
		return
	}
	http.Redirect(w, r, "/account?done=email_changed", http.StatusSeeOther)
}

// accountEndSession ends one of the user's own sessions; another user's
// session ID is answered like an unknown one.
func (h *Handler) accountEndSession(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	id := r.PostFormValue("sessionID")
	other, err := h.flow.db.GetSession(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) || err == nil && other.UserID != u.ID {
		h.accountFail(w, r, s, u, fail(CodeInvalidRequest, "That session is not one of yours, or has ended."))
		return
	}
	if err == nil {
		err = h.sessions.End(w, r, id)
	}
	if err != nil {
		h.accountFail(w, r, s, u, internal(err))
		return
	}
	if id == s.ID {
		h.render(w, http.StatusOK, "message", page{Title: "Signed out", Message: "You are signed out of stile."})
		return
	}
	http.Redirect(w, r, "/account?done=session_ended", http.StatusSeeOther)
}

// accountEndOthers ends every session of the user but the browser's own.
func (h *Handler) accountEndOthers(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User) {
	all, err := h.flow.accounts.Sessions(r.Context(), u.ID)
	for i := 0; err == nil && i < len(all.Sessions); i++ {
		if id := all.Sessions[i].ID; id != s.ID {
			err = h.sessions.End(w, r, id)
		}
	}
	if err != nil {
		h.accountFail(w, r, s, u, internal(err))
		return
	}
	http.Redirect(w, r, "/account?done=sessions_ended", http.StatusSeeOther)
}

// accountDone ends a change: the page with the error, or back to /account
// saying what was done.
func (h *Handler) accountDone(w http.ResponseWriter, r *http.Request, s *storage.Session, u *storage.User, err error, done string) {
	if err != nil {
		h.accountFail(w, r, s, u, err)
		return
	}
	http.Redirect(w, r, "/account?done="+done, http.StatusSeeOther)
}
