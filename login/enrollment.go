package login

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"image/png"
	"strings"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/storage"
)

// EnrollPath is where an enrolment link points.
const EnrollPath = account.EnrollPath

// Enrolling is what the enrolment page shows after the password: a new
// secret, once, to the browser that proved the password.
type Enrolling struct {
	Username      string
	Secret        string
	URL           string
	QR            []byte // PNG
	TransactionID string // during a sign-in: the transaction whose next code confirms it
}

// openLink loads a link that can still be used; claimed links only by the
// browser that claimed them. A request without the binding cookie (which
// GET /enroll sets) is refused before anything: were it let through, its
// claim would bind the link to nothing, and whoever held only the link
// would later see the same secret.
func (f *Flow) openLink(ctx context.Context, token string, binding []byte) (*storage.EnrollmentLink, *storage.User, error) {
	if len(binding) == 0 {
		return nil, nil, fail(CodeWrongBrowser, msgLinkNoCookie)
	}
	l, err := f.db.EnrollmentLinkByToken(ctx, account.LinkHash(token))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (l.UsedAt.Valid || !f.now().Before(l.ExpiresAt))) {
		return nil, nil, fail(CodeExpired, msgLinkExpired)
	}
	if err != nil {
		return nil, nil, internal(err)
	}
	// A link claimed before this rule could have no binding beside its
	// secret: it belongs to nobody, and nobody sees that secret.
	if (l.BindingHash != nil || l.SecretSealed != nil) && !hmac.Equal(l.BindingHash, binding) {
		return nil, nil, fail(CodeWrongBrowser, "This link was opened in another browser. Ask your administrator for a new one.")
	}
	u, err := f.db.GetUser(ctx, l.UserID)
	if err != nil {
		return nil, nil, internal(err)
	}
	if u.Disabled {
		return nil, nil, fail(CodeAccountDisabled, msgDisabled)
	}
	return l, u, nil
}

const msgLinkNoCookie = "Open the link in your browser, with cookies allowed for this site, and start again from there."

const msgLinkExpired = "This enrolment link has expired or was already used. Ask your administrator for a new one."

// EnrollForm is what a link's first page asks for.
type EnrollForm struct {
	Username string
	Choose   bool // the user has no password: they choose one, entered twice
	Chosen   bool // they chose one on this link, in this browser: enter it again
}

// EnrollUser says whose link this is and what its first page asks for.
func (f *Flow) EnrollUser(ctx context.Context, token string, binding []byte) (*EnrollForm, error) {
	l, u, err := f.openLink(ctx, token, binding)
	if err != nil {
		return nil, err
	}
	none := u.PasswordHash == ""
	return &EnrollForm{Username: u.Username, Choose: none && l.SecretSealed == nil, Chosen: none && l.SecretSealed != nil}, nil
}

// NewPassword is the password a user without one chooses on their link.
type NewPassword struct{ Password, Confirm string }

// EnrollStart checks the password of the link's user and, if it is right,
// claims the link for this browser and shows a new secret. The password
// check is the login's: throttled, one argon2id computation. A user
// without a password chooses one instead (choosePassword).
func (f *Flow) EnrollStart(ctx context.Context, token string, binding []byte, in NewPassword, remote, issuer string) (*Enrolling, error) {
	l, u, err := f.openLink(ctx, token, binding)
	if err != nil {
		return nil, err
	}
	var secret string
	switch {
	case u.PasswordHash == "" && l.SecretSealed == nil:
		if secret, err = f.choosePassword(ctx, l, u, binding, in, issuer); err != nil {
			return nil, err
		}
	case u.PasswordHash == "":
		if secret, err = f.reenterChosen(ctx, l, u, in.Password); err != nil {
			return nil, err
		}
	default:
		if secret, err = f.provePassword(ctx, l, u, binding, in.Password, remote, issuer); err != nil {
			return nil, err
		}
	}
	e := EnrollmentFor(issuer, u.Username, secret)
	png, err := qrPNG(e.URL)
	if err != nil {
		return nil, internal(err)
	}
	f.log.Info("enrolment secret shown", "user", u.ID, "link", l.ID, "remote", remote)
	return &Enrolling{Username: u.Username, Secret: e.Secret, URL: e.URL, QR: png}, nil
}

// provePassword checks the password of a user who has one and claims the
// link for this browser with a new secret, or, for the same browser again,
// returns the pending one.
func (f *Flow) provePassword(ctx context.Context, l *storage.EnrollmentLink, u *storage.User, binding []byte, password, remote, issuer string) (string, error) {
	a := newAudit(EventEnrollPassword)
	_, err := f.checkPassword(ctx, Credentials{Username: u.Username, Password: password, RemoteAddr: remote, audit: a})
	f.finish(ctx, a, err)
	if err != nil {
		return "", err
	}
	if l.SecretSealed != nil { // the same browser again: the same pending secret
		secret, _, err := f.openPending(l)
		return secret, err
	}
	return f.claim(ctx, l, u, binding, "", issuer)
}

// choosePassword takes the password a user without one chooses: the
// policy's, typed twice, hashed in the pool (a full pool is a 503, like a
// sign-in's). Each try counts against the address's password rate, which
// bounds the hashing. The hash is sealed with the pending secret, bound
// to this browser by the claim, and becomes the user's only when the new
// authenticator is confirmed (EnrollConfirm): an abandoned link leaves the
// account as it was, and only this browser can finish it.
func (f *Flow) choosePassword(ctx context.Context, l *storage.EnrollmentLink, u *storage.User, binding []byte, in NewPassword, issuer string) (string, error) {
	if err := CheckPasswordPolicy(in.Password); err != nil {
		return "", fail(CodeInvalidRequest, "Choose another password: "+err.Error()+".")
	}
	if in.Password != in.Confirm {
		return "", fail(CodeInvalidRequest, "The two passwords are not the same. Type your new password twice.")
	}
	if err := f.throttle.hit(ctx, "password", f.limits.PasswordPerAddress, clientip.From(ctx)); err != nil {
		return "", err
	}
	hash, err := f.hasher.Hash(in.Password)
	if err != nil {
		return "", AsError(err)
	}
	return f.claim(ctx, l, u, binding, hash, issuer)
}

// reenterChosen shows the pending secret again to the browser that chose a
// password on this link, once it types that password again. The guess is
// counted like a sign-in's.
func (f *Flow) reenterChosen(ctx context.Context, l *storage.EnrollmentLink, u *storage.User, password string) (secret string, err error) {
	secret, hash, err := f.openPending(l)
	if err != nil {
		return "", err
	}
	if hash == "" { // claimed while the user still had a password, since removed
		return "", fail(CodeExpired, msgLinkExpired)
	}
	addr := clientip.From(ctx)
	if err := f.throttle.hit(ctx, "password", f.limits.PasswordPerAddress, addr); err != nil {
		return "", err
	}
	// Past the address's rate: the outcome is recorded (audit.go).
	defer func() { f.recordFor(ctx, EventEnrollPassword, u, "", err, storage.Attributes{"chosen_on_link": true}) }()
	g := f.throttle.guessFor(f.throttle.account(u, ""), addr, nil)
	if err := f.throttle.reserve(ctx, g, f.now()); err != nil {
		return "", err
	}
	ok, err := f.hasher.Verify(hash, password)
	if err == nil && ok {
		err = f.throttle.release(ctx, g)
	} else if err == nil {
		err = fail(CodeInvalidCredentials, "That is not the password you chose on this link.")
	}
	if err != nil {
		return "", AsError(err)
	}
	return secret, nil
}

// claim binds the link to this browser with a new secret and, for a user
// choosing their password, its hash. Only the first browser can.
func (f *Flow) claim(ctx context.Context, l *storage.EnrollmentLink, u *storage.User, binding []byte, hash, issuer string) (string, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: u.Username, SecretSize: 20})
	if err != nil {
		return "", internal(err)
	}
	secret := key.Secret()
	sealed, err := f.sealer.Seal([]byte(pendingPlain(secret, hash)), storage.EnrollmentSecretAAD(l.ID))
	if err != nil {
		return "", internal(err)
	}
	if err := f.db.ClaimEnrollmentLink(ctx, l.ID, binding, sealed); err != nil {
		return "", fail(CodeExpired, msgLinkExpired)
	}
	return secret, nil
}

// A link's pending secret is sealed as "SECRET" or, when the user chose a
// password on it, "SECRET\nPHC-HASH": neither a base32 secret nor a PHC
// string holds a newline, and links claimed before passwords could be
// chosen read as they were.
func pendingPlain(secret, hash string) string {
	if hash == "" {
		return secret
	}
	return secret + "\n" + hash
}

// openPending returns the link's pending secret and chosen password hash.
func (f *Flow) openPending(l *storage.EnrollmentLink) (secret, hash string, err error) {
	b, err := f.sealer.Open(l.SecretSealed, storage.EnrollmentSecretAAD(l.ID))
	if err != nil {
		return "", "", internal(err)
	}
	secret, hash, _ = strings.Cut(string(b), "\n")
	return secret, hash, nil
}

// pendingSecret shows the link's secret again to the browser that claimed
// it, after a wrong confirmation code.
func (f *Flow) pendingSecret(ctx context.Context, token string, binding []byte) (*Enrolling, error) {
	l, u, err := f.openLink(ctx, token, binding)
	if err != nil {
		return nil, err
	}
	if l.SecretSealed == nil {
		return nil, fail(CodeInvalidRequest, "Enter your password first.")
	}
	secret, _, err := f.openPending(l)
	if err != nil {
		return nil, err
	}
	e := EnrollmentFor(f.issuerLabel, u.Username, secret)
	png, err := qrPNG(e.URL)
	if err != nil {
		return nil, internal(err)
	}
	return &Enrolling{Username: u.Username, Secret: e.Secret, URL: e.URL, QR: png}, nil
}

// EnrollConfirm checks the first code from the new authenticator. Right,
// it becomes the user's second factor (the confirming step counts as used),
// the password chosen on the link (if any) becomes theirs, and the link is
// spent.
func (f *Flow) EnrollConfirm(ctx context.Context, token string, binding []byte, code string) (err error) {
	l, u, err := f.openLink(ctx, token, binding)
	if err != nil {
		return err
	}
	if l.SecretSealed == nil {
		return fail(CodeInvalidRequest, "Enter your password first.")
	}
	g, err := f.codeGuess(ctx, u) // counted before it is checked
	if err != nil {
		return err
	}
	defer func() {
		f.recordFor(ctx, EventFactorEnrolled, u, "", err, storage.Attributes{"method": MethodTOTP, "via": "link"})
	}()
	secret, hash, err := f.openPending(l)
	if err != nil {
		return err
	}
	step, ok := matchTOTP(secret, strings.Join(strings.Fields(code), ""), f.now(), 0) // "123 456", as the form allows
	if !ok {
		return fail(CodeInvalidOTP, msgInvalidOTP)
	}
	if err := f.throttle.release(ctx, g); err != nil {
		return err
	}
	if err := f.db.UseEnrollmentLink(ctx, l.ID); err != nil {
		return fail(CodeExpired, msgLinkExpired)
	}
	if hash != "" {
		if err := f.adoptPassword(ctx, u, hash); err != nil {
			return err
		}
	}
	sealed, err := f.sealer.Seal([]byte(secret), storage.TOTPSecretAAD(u.ID))
	if err != nil {
		return internal(err)
	}
	if err := f.db.SetTOTP(ctx, u.ID, sealed); err != nil {
		return internal(err)
	}
	if _, err := f.db.AcceptTOTPStep(ctx, u.ID, step); err != nil {
		return internal(err)
	}
	f.log.Info("TOTP enrolled through a link", "user", u.ID, "link", l.ID)
	return nil
}

// adoptPassword stores the password a user chose on their link, unless
// they have one by now (an operator set it meanwhile: theirs stands).
func (f *Flow) adoptPassword(ctx context.Context, u *storage.User, hash string) error {
	kept := false
	_, err := f.db.UpdateUser(ctx, u.ID, func(cur *storage.User) error {
		if kept = cur.PasswordHash != ""; !kept {
			cur.PasswordHash = hash
		}
		return nil
	})
	if err != nil {
		return internal(err)
	}
	if kept {
		f.log.Warn("enrolment link: the user has a password by now; the one chosen on the link is dropped", "user", u.ID)
		return nil
	}
	f.recordFor(ctx, EventEnrollPassSet, u, "", nil, nil)
	f.log.Info("password chosen on an enrolment link", "user", u.ID)
	return nil
}

// qrPNG draws text as a QR code image.
func qrPNG(text string) ([]byte, error) {
	key, err := otp.NewKeyFromURL(text)
	if err != nil {
		return nil, err
	}
	img, err := key.Image(220, 220)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
