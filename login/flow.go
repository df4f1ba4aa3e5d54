package login

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/storage"
)

// Flow is the login state machine that every front end shares: stile's HTML
// pages now, the JSON API and the direct mode later. Handlers only decode
// input, call a step and render what it returns.
//
//	auth request ──Begin──► password ──Authenticate──► transaction (otp) ──Verify──► done ──► callback
//	                              ▲                          │ too many wrong codes
//	                              └──────────── dead ◄───────┘
type Flow struct {
	db          *storage.DB
	hasher      Hasher
	sealer      Sealer
	sessions    *Sessions
	throttle    *throttle
	now         func() time.Time
	callbackURL func(ctx context.Context, authRequestID string) string
	log         *slog.Logger
	issuer      string
	issuerLabel string // how authenticator apps list stile's accounts
	accounts    *account.Service
	dummyHash   string // verified against when the user is unknown: same cost, same answer
	delivery    Delivery
	keys        CodeKeys
	issueDirect TokenIssuer
	limits      Limits
	devices     *Devices // recognises browsers that signed in before
	count       Counter
	signInWith  SignInWith     // what users identify themselves with (identifier.go)
	background  sync.WaitGroup // passwordless sends in flight (passwordless.go)
	forgot      forgotQueue    // forgot-password requests at work in the background (forgot.go)

	challenger ChallengeProvider // the authorization challenge endpoint's provider; nil: the endpoint is off

	// MaxOTPFailures is how many wrong codes kill a transaction.
	MaxOTPFailures int
}

// Config is what a Flow needs.
type Config struct {
	DB          *storage.DB
	Hasher      Hasher
	Sealer      Sealer
	Sessions    *Sessions
	Pepper      []byte // HMAC key for throttling unknown usernames
	Now         func() time.Time
	CallbackURL func(ctx context.Context, authRequestID string) string
	Log         *slog.Logger
	Issuer      string   // stile\'s own URL, for links the JSON API hands out
	IssuerLabel string   // the issuer as authenticator apps show it, e.g. "stile id.example.com"
	Delivery    Delivery // zero: DefaultDelivery (no senders)
	CodeKeys    CodeKeys
	IssueDirect TokenIssuer // mints the direct mode\'s tokens
	Limits      *Limits     // nil: DefaultLimits
	DeviceKey   []byte      // MAC key of the device cookie; nil: no browser is ever recognised
	Counter     Counter     // metrics; nil: nothing counted

	// Challenge is the provider behind the authorization challenge
	// endpoint (it needs CodeKeys.Challenge); nil: the endpoint is off.
	Challenge ChallengeProvider

	SignInWith SignInWith // the identifiers users sign in with; nil: usernames
}

// NewFlow returns a Flow.
func NewFlow(c Config) (*Flow, error) {
	dummy, err := standIn(c.Hasher)
	if err != nil {
		return nil, err
	}
	if c.Delivery.CodeLifetime == 0 {
		c.Delivery.CodeLifetime, c.Delivery.ResendAfter = DefaultDelivery.CodeLifetime, DefaultDelivery.ResendAfter
	}
	if c.Delivery.CodeLifetime > 10*time.Minute {
		return nil, fmt.Errorf("a sent code may live at most 10 minutes (NIST SP 800-63B), not %s", c.Delivery.CodeLifetime)
	}
	if len(c.CodeKeys.LoginToken) < 32 { // an empty key would let anyone compute every loginToken
		return nil, errors.New("login: CodeKeys.LoginToken must be a 32-byte key derived from the master key")
	}
	if c.Challenge != nil && len(c.CodeKeys.Challenge) < 32 {
		return nil, errors.New("login: CodeKeys.Challenge must be a 32-byte key derived from the master key")
	}
	limits := DefaultLimits
	if c.Limits != nil {
		limits = c.Limits.withLockDefaults()
	}
	f := &Flow{
		db: c.DB, hasher: c.Hasher, sealer: c.Sealer, sessions: c.Sessions, now: c.Now, callbackURL: c.CallbackURL,
		log: c.Log, issuer: c.Issuer, issuerLabel: c.IssuerLabel, dummyHash: dummy,
		delivery: c.Delivery, keys: c.CodeKeys, issueDirect: c.IssueDirect, limits: limits,
		devices:        newDevices(c.DeviceKey, strings.HasPrefix(c.Issuer, "https://"), c.Now),
		MaxOTPFailures: 5, signInWith: c.SignInWith,
	}
	f.challenger = c.Challenge
	if f.count = c.Counter; f.count == nil {
		f.count = noCounter{}
	}
	f.throttle = &throttle{db: c.DB, pepper: c.Pepper, limits: &f.limits, count: f.count}
	// The changes a sign-in or self-service makes to an account go through
	// the account service, as every other door's do.
	f.accounts = account.New(account.Config{DB: c.DB, Hasher: c.Hasher, Sealer: c.Sealer, RecoveryKey: c.CodeKeys.Recovery,
		Issuer: c.Issuer, IssuerLabel: c.IssuerLabel, Notify: f.notify, Log: c.Log})
	if c.Sessions != nil {
		c.Sessions.record = f.record // a logout is in the trail, whichever door ended it
	}
	return f, nil
}

// Accounts is the account service the flow changes accounts through (with
// its notices by email): the other doors share it.
func (f *Flow) Accounts() *account.Service { return f.accounts }

// Next is where a browser goes after a step that ended the login: the
// provider's callback (RedirectURI), or the consent page for an
// authorization request (ConsentFor). A step that started a session also
// hands back its cookie value, for the handler to set.
type Next struct {
	RedirectURI   string
	ConsentFor    string
	SessionCookie string
	SessionID     string // the session SessionCookie names
	UserID        string // who signed in, when the step completed a sign-in: the device cookie names them
}

// Begun is what the hand-off found: a login to show (Next nil), or where
// to go without one — the callback, silently signed in through the SSO
// session or with an error such as login_required; or the consent page.
type Begun struct {
	AuthRequest *storage.AuthRequest
	LoginHint   string
	Next        *Next
}

// Begin checks an authorization request at the /login hand-off and binds it
// to the browser presenting binding; the first browser to arrive owns it.
// With the browser's SSO session (current, may be nil) it signs in
// silently, unless prompt, max_age or id_token_hint ask for a new login.
func (f *Flow) Begin(ctx context.Context, authRequestID string, binding []byte, current *storage.Session) (*Begun, error) {
	ar, err := f.openAuthRequest(ctx, authRequestID, binding, storage.DoorPages)
	if err != nil {
		return nil, err
	}
	if f.reusable(ar, current) && f.strongEnough(ctx, ar, current) {
		next, err := f.afterLogin(ctx, ar, current)
		if err != nil {
			return nil, err
		}
		return &Begun{AuthRequest: ar, Next: next}, nil
	}
	if ar.Prompt.Contains("none") {
		next, err := f.end(ctx, ar, "login_required")
		return &Begun{AuthRequest: ar, Next: next}, err
	}
	if c, err := f.db.GetClient(ctx, ar.ClientID); err == nil && c.LoginURL != "" {
		// The client renders its own login page on the JSON API; the request
		// is bound to this browser now, and the ticket and the callback will
		// check it. The loginToken goes only to the page this browser opens:
		// the API's first call must show it (doors.go, loginToken). It is in
		// the query, not the fragment, so a login page rendered by the
		// client's server can read it too.
		u := c.LoginURL + map[bool]string{true: "&", false: "?"}[strings.Contains(c.LoginURL, "?")] +
			url.Values{"authRequestID": {ar.ID}, "loginToken": {f.loginToken(ar)}}.Encode()
		return &Begun{AuthRequest: ar, Next: &Next{RedirectURI: u}}, nil
	}
	return &Begun{AuthRequest: ar, LoginHint: ar.LoginHint}, nil
}

// reusable reports whether the session can answer the request without a
// new login: it exists, is recent enough for max_age (prompt=login arrives
// as max_age=0), and belongs to the id_token_hint's user if there is one.
func (f *Flow) reusable(ar *storage.AuthRequest, s *storage.Session) bool {
	switch {
	case s == nil, ar.Prompt.Contains("login"), ar.Prompt.Contains("select_account"):
		return false
	case ar.HintSubject != "" && ar.HintSubject != s.UserID:
		return false
	case ar.MaxAge.Valid && (ar.MaxAge.Int64 == 0 || f.now().Sub(s.AuthTime) > time.Duration(ar.MaxAge.Int64)*time.Second):
		return false
	}
	return true
}

// end finishes the request with an OAuth error for the client.
func (f *Flow) end(ctx context.Context, ar *storage.AuthRequest, code string) (*Next, error) {
	if err := f.db.FailAuthRequest(ctx, ar.ID, code); err != nil {
		return nil, internal(err)
	}
	return &Next{RedirectURI: f.callbackURL(ctx, ar.ID)}, nil
}

// afterLogin answers the request for the session's user: through the
// consent page if the client needs consent, or straight to the callback.
func (f *Flow) afterLogin(ctx context.Context, ar *storage.AuthRequest, s *storage.Session) (*Next, error) {
	need, err := f.needsConsent(ctx, ar, s.UserID)
	if err != nil {
		return nil, err
	}
	if need {
		if ar.Prompt.Contains("none") {
			return f.end(ctx, ar, "consent_required")
		}
		return &Next{ConsentFor: ar.ID}, nil
	}
	return f.answer(ctx, ar, s)
}

// answer completes the request with the session's user, auth_time and amr.
func (f *Flow) answer(ctx context.Context, ar *storage.AuthRequest, s *storage.Session) (*Next, error) {
	if err := f.db.CompleteAuthRequest(ctx, ar.ID, s); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fail(CodeExpired, msgExpired)
		}
		return nil, internal(err)
	}
	if err := f.sessions.touch(ctx, s); err != nil {
		return nil, internal(err)
	}
	return &Next{RedirectURI: f.callbackURL(ctx, ar.ID)}, nil
}

// ClientName returns the display name of the client an authorization
// request is for, or "" if there is none to show.
func (f *Flow) ClientName(ctx context.Context, authRequestID string) string {
	if authRequestID == "" {
		return ""
	}
	ar, err := f.db.GetAuthRequest(ctx, authRequestID)
	if err != nil {
		return ""
	}
	return f.clientName(ctx, ar.ClientID)
}

// clientName is the client's display name: its Name, or its ID if it has
// none; "" if there is no such client.
func (f *Flow) clientName(ctx context.Context, clientID string) string {
	c, err := f.db.GetClient(ctx, clientID)
	if err != nil {
		return ""
	}
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// newID returns an unguessable identifier: 256 random bits, URL-safe.
func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// standIn is the hash unknown usernames are checked against: same cost,
// same answer. A Hasher that can make one without hashing (Argon2id, and a
// Pool over it) does; any other hashes a random password once.
func standIn(h Hasher) (string, error) {
	if s, ok := h.(interface{ StandIn() (string, error) }); ok {
		return s.StandIn()
	}
	return h.Hash(rand.Text())
}
