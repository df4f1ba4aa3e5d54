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

// EnrollUser returns whose link this is, for the password page.
func (f *Flow) EnrollUser(ctx context.Context, token string, binding []byte) (string, error) {
	_, u, err := f.openLink(ctx, token, binding)
	if err != nil {
		return "", err
	}
	return u.Username, nil
}

// EnrollStart checks the password of the link's user and, if it is right,
// claims the link for this browser and shows a new secret. The password
// check is the login's: throttled, one argon2id computation.
func (f *Flow) EnrollStart(ctx context.Context, token string, binding []byte, password, remote, issuer string) (*Enrolling, error) {
	l, u, err := f.openLink(ctx, token, binding)
	if err != nil {
		return nil, err
	}
	if _, err := f.checkPassword(ctx, Credentials{Username: u.Username, Password: password, RemoteAddr: remote}); err != nil {
		return nil, err
	}
	var secret string
	if l.SecretSealed != nil { // the same browser again: the same pending secret
		b, err := f.sealer.Open(l.SecretSealed, storage.EnrollmentSecretAAD(l.ID))
		if err != nil {
			return nil, internal(err)
		}
		secret = string(b)
	} else {
		key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: u.Username, SecretSize: 20})
		if err != nil {
			return nil, internal(err)
		}
		secret = key.Secret()
		sealed, err := f.sealer.Seal([]byte(secret), storage.EnrollmentSecretAAD(l.ID))
		if err != nil {
			return nil, internal(err)
		}
		if err := f.db.ClaimEnrollmentLink(ctx, l.ID, binding, sealed); err != nil {
			return nil, fail(CodeExpired, msgLinkExpired)
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
	secret, err := f.sealer.Open(l.SecretSealed, storage.EnrollmentSecretAAD(l.ID))
	if err != nil {
		return nil, internal(err)
	}
	e := EnrollmentFor(f.issuerLabel, u.Username, string(secret))
	png, err := qrPNG(e.URL)
	if err != nil {
		return nil, internal(err)
	}
	return &Enrolling{Username: u.Username, Secret: e.Secret, URL: e.URL, QR: png}, nil
}

// EnrollConfirm checks the first code from the new authenticator. Right,
// it becomes the user's second factor (the confirming step counts as used)
// and the link is spent.
func (f *Flow) EnrollConfirm(ctx context.Context, token string, binding []byte, code string) error {
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
	secret, err := f.sealer.Open(l.SecretSealed, storage.EnrollmentSecretAAD(l.ID))
	if err != nil {
		return internal(err)
	}
	step, ok := matchTOTP(string(secret), strings.TrimSpace(code), f.now(), 0)
	if !ok {
		return fail(CodeInvalidOTP, msgInvalidOTP)
	}
	if err := f.throttle.release(ctx, g); err != nil {
		return err
	}
	if err := f.db.UseEnrollmentLink(ctx, l.ID); err != nil {
		return fail(CodeExpired, msgLinkExpired)
	}
	sealed, err := f.sealer.Seal(secret, storage.TOTPSecretAAD(u.ID))
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
