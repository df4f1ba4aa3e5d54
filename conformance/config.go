package conformance

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Config is a provider under test and what the suite needs to drive it.
type Config struct {
	Issuer string

	// Client and Client2 authenticate with client_secret_basic; PostClient
	// with client_secret_post. Each is registered with its RedirectURI and
	// (for the logout modules, Client) its PostLogoutRedirectURI. Client
	// and Client2 may use refresh tokens.
	Client, Client2, PostClient Client

	// Login gets the user through the provider's pages.
	Login LoginDriver

	// Transport carries every request; nil for http.DefaultTransport.
	Transport http.RoundTripper

	// Wait lets time pass (max_age and code-reuse modules); nil sleeps.
	// Now is the provider's time; nil is the wall clock.
	Wait func(time.Duration)
	Now  func() time.Time
}

// Client is a registered client.
type Client struct {
	ID, Secret            string
	RedirectURI           string
	PostLogoutRedirectURI string
	Post                  bool // client_secret_post instead of client_secret_basic
}

// LoginDriver gets a user through a provider's login UI. Login is given the
// first page the provider shows and returns the response that ends the UI:
// normally the redirect back to the client (which the browser does not
// follow). It returns an error if the page is not one it knows.
type LoginDriver interface {
	Login(b *Browser, p *Page) (*Page, error)
}

// Account is a user the login driver signs in as.
type Account struct {
	Username, Password string
	OTP                *TOTP // nil if the provider asks for no one-time code
}

// FormLogin fills in HTML login forms: a username and password form, then
// a one-time-code form, then (if shown) a consent form, in any order the
// provider presents them.
//
// A provider accepts each TOTP time step once per user, so a driver with
// one account could sign in once per 30 seconds. It therefore takes a pool
// of accounts: each browser keeps the account it first signed in with (a
// re-login in the same browser is the same user), and a new browser gets
// an account whose current code is still unused, if there is one.
type FormLogin struct {
	Accounts      []*Account
	UsernameField string // e.g. "username"
	PasswordField string // e.g. "password"
	OTPField      string // e.g. "otp"
	ConsentField  string // e.g. "decision"; "" if the provider has no consent form
	ConsentValue  string // e.g. "allow"

	mu        sync.Mutex
	byBrowser map[*Browser]*Account
	next      int
}

// account picks the account for a browser.
func (l *FormLogin) account(b *Browser) *Account {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.byBrowser[b]; ok {
		return a
	}
	if l.byBrowser == nil {
		l.byBrowser = map[*Browser]*Account{}
	}
	a := l.Accounts[l.next%len(l.Accounts)]
	for i := range l.Accounts {
		if c := l.Accounts[(l.next+i)%len(l.Accounts)]; c.OTP == nil || c.OTP.ready() {
			a = c
			break
		}
	}
	l.next++
	l.byBrowser[b] = a
	return a
}

// Login implements LoginDriver.
func (l *FormLogin) Login(b *Browser, p *Page) (*Page, error) {
	acct := l.account(b)
	for range 6 {
		if p.Location() != nil {
			return p, nil
		}
		f, ok := p.Form()
		if !ok {
			return p, fmt.Errorf("login: no form on %s (status %d)", p.URL.Redacted(), p.Status)
		}
		fields := map[string]string{}
		switch {
		case f.Has(l.UsernameField) && f.Has(l.PasswordField):
			fields[l.UsernameField], fields[l.PasswordField] = acct.Username, acct.Password
		case acct.OTP != nil && f.Has(l.OTPField):
			fields[l.OTPField] = acct.OTP.Code()
		case l.ConsentField != "" && f.Has(l.ConsentField):
			fields[l.ConsentField] = l.ConsentValue
		default:
			return p, fmt.Errorf("login: a form the driver does not know, on %s", p.URL.Redacted())
		}
		var err error
		if p, err = b.Submit(p, fields); err != nil {
			return nil, err
		}
		if p.Status >= 400 {
			return p, fmt.Errorf("login: %s answered %d", p.URL.Redacted(), p.Status)
		}
	}
	return p, fmt.Errorf("login: still on the provider's pages at %s", p.URL.Redacted())
}

// TOTP computes RFC 6238 codes (SHA-1, 6 digits, 30 s) from a base32
// secret, as an authenticator app would. A provider accepts each time step
// once, so Code waits (with wait) for a step not used before.
type TOTP struct {
	Secret string
	Now    func() time.Time
	Wait   func(time.Duration)

	mu   sync.Mutex
	last int64
}

// ready reports whether the current step's code is still unused.
func (t *TOTP) ready() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.Now().Unix()/30 > t.last
}

// Code returns the code of the current time step, never the same step twice.
func (t *TOTP) Code() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	step := t.Now().Unix() / 30
	if step <= t.last {
		t.Wait(time.Duration((t.last+1)*30-t.Now().Unix()) * time.Second)
		step = t.Now().Unix() / 30
	}
	t.last = step
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(t.Secret, "=")))
	if err != nil {
		return "000000"
	}
	msg := make([]byte, 8)
	binary.BigEndian.PutUint64(msg, uint64(step))
	m := hmac.New(sha1.New, key)
	m.Write(msg)
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1_000_000)
}
