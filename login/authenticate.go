package login

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/stile-id/stile/internal/clientip"
	"github.com/stile-id/stile/internal/passhash"
	"github.com/stile-id/stile/storage"
)

// Credentials is the first step's input.
type Credentials struct {
	AuthRequestID string
	Binding       []byte // MAC of the browser's binding cookie
	Door          string // storage.DoorPages or storage.DoorAPI: who is asking (see openAuthRequest)
	Username      string
	Password      string
	Replaces      string  // the ID of the browser's current session, if any
	Device        *Device // the browser's device cookie, on stile's pages (nil: none, or another door)
	RemoteAddr    string  // for the log

	audit *audit // the step's event, when the caller records one
}

// Challenge is what the second step needs: the transaction and the method
// the server chose for it (with a new authenticator to show, for
// TOTP_ENROLL). For an account exempt from the second factor the login is
// already complete, and Next says where to go.
type Challenge struct {
	TransactionID string
	Method        string
	Message       string
	Enroll        *Enrolling
	Next          *Next
	Passwordless  bool   // the code is the only factor (passwordless.go)
	ClientName    string // for the pages (Pending): the display name of the client the sign-in is for
}

// Authenticate checks a username and password for an authorization
// request. Unknown usernames and wrong passwords take the same path — one
// argon2id computation, one failure counted, one answer — so neither the
// reply nor its timing tells them apart.
func (f *Flow) Authenticate(ctx context.Context, in Credentials) (ch *Challenge, err error) {
	a := newAudit(EventPassword)
	a.Detail["door"] = in.Door
	in.audit, ctx = a, withAudit(ctx, a)
	defer func() {
		f.counted("password", "PASSWORD", in.Door, ch != nil && ch.Next != nil, err)
		if ch != nil {
			a.Detail["next"] = ch.Method
		}
		f.finish(ctx, a, err)
	}()
	if err := checkCredentials(in.Username, in.Password); err != nil {
		return nil, err
	}
	ar, err := f.openAuthRequest(ctx, in.AuthRequestID, in.Binding, in.Door)
	if err != nil {
		return nil, err
	}
	a.ActorClient = ar.ClientID
	user, g, err := f.passwordGuess(ctx, in)
	if err != nil {
		return nil, err
	}
	log := f.log.With("user", user.ID, "client", ar.ClientID, "remote", in.RemoteAddr)
	if user.OTPExempt && !user.Disabled {
		return f.exempt(ctx, ar, user, g, in, log)
	}
	tx := &storage.LoginTransaction{AuthRequestID: sql.NullString{String: ar.ID, Valid: true}, ClientID: ar.ClientID, Door: in.Door,
		BindingHash: ar.BindingHash, ExpiresAt: ar.ExpiresAt}
	return f.secondStep(ctx, tx, user, log)
}

func checkCredentials(username, password string) error {
	if strings.TrimSpace(username) == "" || password == "" {
		return fail(CodeInvalidRequest, "Enter your username and password.")
	}
	if len(username) > 256 || len(password) > MaxPasswordLength {
		return fail(CodeInvalidRequest, "The username or password is too long.")
	}
	return nil
}

// secondStep opens the transaction for a user whose password was right:
// it picks the method, and sends a code or shows a new authenticator if
// the method calls for one.
func (f *Flow) secondStep(ctx context.Context, tx *storage.LoginTransaction, user *storage.User, log *slog.Logger) (*Challenge, error) {
	if user.Disabled {
		log.Info("login refused", "step", "password", "reason", "disabled")
		return nil, fail(CodeAccountDisabled, msgDisabled)
	}
	client, err := f.db.GetClient(ctx, tx.ClientID)
	if err != nil {
		return nil, internal(err)
	}
	if tx.Method, err = f.chooseMethod(ctx, user, client); err != nil {
		log.Info("login refused", "step", "password", "reason", "no second factor for this client's policy")
		return nil, err
	}
	tx.ID, tx.UserID = newID(), user.ID
	if err := f.db.CreateLoginTransaction(ctx, tx); err != nil {
		return nil, internal(err)
	}
	var e *Enrolling
	switch baseMethod(tx.Method) {
	case MethodTOTPEnroll:
		e, err = f.startEnrollment(ctx, tx, user)
	case MethodEmail, MethodSMS:
		err = f.sendCode(ctx, tx, user)
	}
	if err != nil {
		return nil, err
	}
	log.Info("login step passed", "step", "password", "transaction", tx.ID, "next", baseMethod(tx.Method))
	return f.challenge(tx, user, e), nil
}

// checkPassword returns the user if the password is theirs.
func (f *Flow) checkPassword(ctx context.Context, in Credentials) (*storage.User, error) {
	user, _, err := f.passwordGuess(ctx, in)
	return user, err
}

// passwordGuess checks a password as one guess, on every door: the source
// address's request rate first, then the guess is reserved — counted
// against the (account, address) pair, the account and the address, or
// for a browser with the account's device cookie the pair and the device
// — before the one argon2id computation; a locked subject is refused
// before any hashing. A right password is given back (it was no failure);
// the sign-in's completion clears the counts (throttle.success with the
// guess returned). Unknown identifiers take the same path against an HMAC
// of the normalised identifier. in.Username is whatever identifier the
// deployment signs in with (SignInWith): a username, email or phone.
func (f *Flow) passwordGuess(ctx context.Context, in Credentials) (*storage.User, *guess, error) {
	addr := clientip.From(ctx)
	if err := f.throttle.hit(ctx, "password", f.limits.PasswordPerAddress, addr); err != nil {
		f.log.Info("login refused", "step", "password", "reason", "address rate", "remote", in.RemoteAddr)
		return nil, nil, err
	}
	in.audit.arm() // past the address's rate: this guess's outcome is recorded
	// One lookup by the deployment's identifiers (identifier.go).
	user, key, err := f.findAccount(ctx, in.Username)
	if err != nil {
		return nil, nil, err
	}
	in.audit.user(user)
	hash, device := f.dummyHash, (*Device)(nil)
	if user != nil {
		device = in.Device.of(user.ID)
		if user.PasswordHash != "" {
			hash = user.PasswordHash
		}
	}
	g := f.throttle.guessFor(f.throttle.account(user, key), addr, device)
	if err := f.throttle.reserve(ctx, g, f.now()); err != nil {
		f.log.Info("login refused", "step", "password", "reason", "throttled", "subject", g.pair, "device", device != nil, "remote", in.RemoteAddr)
		return nil, nil, err
	}
	ok, err := f.hasher.Verify(hash, in.Password)
	if err != nil { // not evaluated (the hashing pool is full, say): not a guess
		if rerr := f.throttle.release(ctx, g); rerr != nil {
			return nil, nil, rerr
		}
		var e *Error
		if errors.As(err, &e) {
			return nil, nil, e
		}
		return nil, nil, internal(err)
	}
	if user == nil || user.PasswordHash == "" || !ok {
		f.log.Info("login failed", "step", "password", "subject", g.pair, "known_user", user != nil, "remote", in.RemoteAddr)
		return nil, nil, fail(CodeInvalidCredentials, f.signInWith.invalidCredentials())
	}
	if err := f.throttle.release(ctx, g); err != nil {
		return nil, nil, err
	}
	f.rehash(ctx, user, in.Password)
	return user, g, nil
}

// rehash replaces a password hash that is not stile's current argon2id —
// one imported from another system, or made with older parameters — now
// that the password is known to be right. The new hash is computed in the
// hashing pool and stored only if the stored hash is still the one just
// checked, so a password change that landed meanwhile wins. It ends no
// session. A failure (the pool is busy, say) costs the sign-in nothing:
// the next one tries again.
func (f *Flow) rehash(ctx context.Context, user *storage.User, password string) {
	if user.Disabled || currentHash(f.hasher, user.PasswordHash) {
		return
	}
	scheme, _ := passhash.Scheme(user.PasswordHash)
	log := f.log.With("user", user.ID, "from", cmp.Or(scheme, "argon2id"))
	h, err := f.hasher.Hash(password)
	if err != nil {
		log.Warn("password not re-hashed: will try at the next sign-in", "err", err)
		return
	}
	ok, err := f.db.ReplacePasswordHash(ctx, user.ID, user.PasswordHash, h)
	switch {
	case err != nil:
		log.Warn("password not re-hashed: will try at the next sign-in", "err", err)
	case !ok:
		log.Info("password not re-hashed: it changed since it was checked")
	default:
		user.PasswordHash = h
		log.Info("password re-hashed with argon2id")
		if a := auditFrom(ctx); a != nil { // the step's event says so
			a.Detail["rehashed_from"] = cmp.Or(scheme, "argon2id")
		}
	}
}

// exempt completes the login of an account an operator exempted from the
// second factor (a dedicated conformance-test account). The ID token says
// so: amr is pwd alone, without mfa. Every use is logged as a warning.
func (f *Flow) exempt(ctx context.Context, ar *storage.AuthRequest, user *storage.User, g *guess, in Credentials, log *slog.Logger) (*Challenge, error) {
	if err := f.throttle.success(ctx, g); err != nil {
		return nil, err
	}
	st, err := f.sessions.start(ctx, user.ID, []string{"pwd"}, in.Replaces)
	if err != nil {
		return nil, internal(err)
	}
	f.signedIn(ctx, user, ar.ClientID, in.Door, []string{"pwd"}, st.session.ID)
	log.Warn("login succeeded WITHOUT a second factor: the account is exempt (stile user update --otp-exempt)",
		"session", st.session.ID)
	next, err := f.afterLogin(ctx, ar, st.session)
	if err != nil {
		return nil, err
	}
	next.SessionCookie, next.SessionID, next.UserID = st.cookie, st.session.ID, user.ID
	return &Challenge{Method: MethodNone, Next: next}, nil
}

// DirectCredentials is the direct mode's first step: a client's backend
// passes on its user's username and password.
type DirectCredentials struct {
	Client     *storage.Client
	Binding    []byte // the client's own binding: only it can finish the transaction
	Username   string
	Password   string
	RemoteAddr string // for the log
}

// DirectLifetime bounds a direct-mode transaction.
const DirectLifetime = 10 * time.Minute

// AuthenticateDirect is Authenticate for the direct mode: no authorization
// request and no browser; the transaction belongs to the client. An
// exempt account still needs a second step here: the direct mode has no
// test-suite use.
func (f *Flow) AuthenticateDirect(ctx context.Context, in DirectCredentials) (ch *Challenge, user *storage.User, err error) {
	a := newAudit(EventPassword)
	a.ActorClient, a.Detail["door"] = in.Client.ID, storage.DoorDirect
	ctx = withAudit(ctx, a)
	defer func() {
		f.counted("password", "PASSWORD", storage.DoorDirect, false, err)
		if ch != nil {
			a.Detail["next"] = ch.Method
		}
		f.finish(ctx, a, err)
	}()
	if err := checkCredentials(in.Username, in.Password); err != nil {
		return nil, nil, err
	}
	// The guess counts against the end user's address, not the backend's:
	// the handler puts X-End-User-IP in the context (clientip.With).
	user, err = f.checkPassword(ctx, Credentials{Username: in.Username, Password: in.Password, RemoteAddr: in.RemoteAddr, audit: a})
	if err != nil {
		return nil, nil, err
	}
	log := f.log.With("user", user.ID, "client", in.Client.ID, "remote", in.RemoteAddr, "mode", "direct")
	tx := &storage.LoginTransaction{ClientID: in.Client.ID, Door: storage.DoorDirect, BindingHash: in.Binding, ExpiresAt: f.now().Add(DirectLifetime)}
	ch, err = f.secondStep(ctx, tx, user, log)
	return ch, user, err
}

// waitingAuthRequest loads a request that is still waiting for a login, or
// says why it cannot continue.
func (f *Flow) waitingAuthRequest(ctx context.Context, id string) (*storage.AuthRequest, error) {
	if id == "" {
		return nil, fail(CodeInvalidRequest, "The sign-in request is missing. Go back to the application and sign in again.")
	}
	ar, err := f.db.GetAuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fail(CodeExpired, msgExpired)
	}
	if err != nil {
		return nil, internal(err)
	}
	if ar.Done || ar.ErrorCode != "" || ar.CallbackAt.Valid || !f.now().Before(ar.ExpiresAt) {
		return nil, fail(CodeExpired, msgExpired)
	}
	return ar, nil
}

// openAuthRequest loads a request that is still waiting for a login and
// checks it against the door asking (see doors.go), or says why it cannot
// continue.
func (f *Flow) openAuthRequest(ctx context.Context, id string, binding []byte, door string) (*storage.AuthRequest, error) {
	ar, err := f.waitingAuthRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	return f.authRequestDoor(ctx, ar, binding, door)
}
