package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"

	"github.com/mdp/qrterminal/v3"

	"github.com/stile-id/stile"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/demo"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
)

// Names of what --demo seeds.
const (
	demoClientID       = "demo"
	demoCustomClientID = "demo-custom-login"
	demoBackendID      = "demo-backend"
	demoUsername       = "demo"
)

// demoSeed is what --demo prints so a newcomer can sign in.
type demoSeed struct {
	client, custom     demo.Client
	backend            demo.Client // the README's backend: introspects the demo clients' tokens, is in their aud
	username, password string
	totp               *login.Enrollment
}

// config is the demo clients' configuration.
func (s *demoSeed) config(issuer string, log *slog.Logger) *demo.Config {
	return &demo.Config{Issuer: issuer, Client: s.client, Custom: &s.custom, CustomLogin: stile.CustomLoginPage(),
		Backend: s.backend.ID, Log: log}
}

// seedDemo registers the demo clients, the backend client and the demo
// user with TOTP enrolled. The client secrets and the user's password are
// new at every start (only their digests are stored, and they are
// printed); the TOTP secret is kept, so an authenticator app set up once
// keeps working.
func seedDemo(ctx context.Context, env *environment, issuer string) (*demoSeed, error) {
	s := &demoSeed{client: demo.Client{ID: demoClientID, Secret: op.NewClientSecret()},
		custom:   demo.Client{ID: demoCustomClientID, Secret: op.NewClientSecret()},
		backend:  demo.Client{ID: demoBackendID, Secret: op.NewClientSecret()},
		username: demoUsername, password: demoPassword()}
	digest := func(secret string) []byte { return op.SecretDigest(op.SecretKey(env.master), secret) }
	for _, c := range []*storage.Client{demoBackendClient(digest(s.backend.Secret)),
		demoClient(issuer, digest(s.client.Secret)), demoCustomClient(issuer, digest(s.custom.Secret))} {
		if err := seedDemoClient(ctx, env, c); err != nil {
			return nil, fmt.Errorf("seed demo client %s: %w", c.ID, err)
		}
	}
	hash, err := login.DefaultArgon2id.Hash(s.password)
	if err != nil {
		return nil, err
	}
	u, err := env.db.GetUserByUsername(ctx, demoUsername)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		u = &storage.User{Username: demoUsername, Email: "demo@example.com", PasswordHash: hash,
			Roles:      storage.Strings{"editor", "demo"},
			Attributes: storage.Attributes{"plan": "pro", "locale": "en-GB", "department": "newsroom"}}
		err = env.db.CreateUser(ctx, u)
	case err == nil:
		u, err = env.db.UpdateUser(ctx, u.ID, func(u *storage.User) error {
			u.PasswordHash, u.Disabled = hash, false
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("seed demo user: %w", err)
	}
	if s.totp, err = demoTOTP(ctx, env, issuer, u); err != nil {
		return nil, fmt.Errorf("seed demo user's TOTP: %w", err)
	}
	return s, nil
}

// demoClient signs in on stile's own pages. Its access tokens are meant
// for the backend client as well as for itself: aud carries both, so a
// backend validates them with -audience demo-backend (or demo) and the
// backend client may introspect them.
func demoClient(issuer string, secretDigest []byte) *storage.Client {
	return &storage.Client{ID: demoClientID, Name: "stile demo", Type: storage.ClientWeb, AuthMethod: storage.AuthSecretBasic,
		SecretHash: secretDigest, RedirectURIs: storage.Strings{issuer + demo.CallbackPath}, RequirePKCE: true, FirstParty: true,
		Audiences: storage.Strings{demoClientID, demoBackendID}}
}

// demoBackendClient is a machine client, like a CMS backend: no sign-in
// and no redirect URI, only its secret, for introspection (and a
// client_credentials token of its own, the one grant a client without a
// redirect URI can have).
func demoBackendClient(secretDigest []byte) *storage.Client {
	return &storage.Client{ID: demoBackendID, Name: "stile demo backend", Type: storage.ClientWeb,
		AuthMethod: storage.AuthSecretBasic, SecretHash: secretDigest, RequirePKCE: true,
		GrantTypes: storage.Strings{storage.GrantClientCredentials}}
}

// demoCustomClient signs in on the example custom login page, which stile
// serves itself in demo mode: its login_url, and its origin allowed to call
// the JSON login API.
func demoCustomClient(issuer string, secretDigest []byte) *storage.Client {
	c := demoClient(issuer, secretDigest)
	c.ID, c.Name = demoCustomClientID, "stile demo (custom login page)"
	c.RedirectURIs = storage.Strings{issuer + demo.CustomCallbackPath}
	c.LoginURL = issuer + demo.CustomLoginPath
	c.WebOrigins = storage.Strings{issuer}
	c.Audiences = storage.Strings{demoCustomClientID, demoBackendID}
	return c
}

// seedDemoClient registers a demo client, or refreshes its secret,
// addresses (the issuer may have changed since the last start), grants
// and audiences (a database seeded by an older stile has none).
func seedDemoClient(ctx context.Context, env *environment, want *storage.Client) error {
	_, err := env.db.UpdateClient(ctx, want.ID, func(c *storage.Client) error {
		c.SecretHash, c.RedirectURIs, c.LoginURL, c.WebOrigins = want.SecretHash, want.RedirectURIs, want.LoginURL, want.WebOrigins
		c.GrantTypes, c.Audiences = want.GrantTypes, want.Audiences
		return nil
	})
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return env.db.CreateClient(ctx, want)
}

// demoTOTP returns the demo user's enrolment, creating it the first time.
func demoTOTP(ctx context.Context, env *environment, issuer string, u *storage.User) (*login.Enrollment, error) {
	_, secret, err := login.OpenTOTP(ctx, env.db, env.sealer, u.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return account.EnrollTOTP(ctx, env.db, env.sealer, issuerLabel(issuer), u)
	}
	if err != nil {
		return nil, err
	}
	return login.EnrollmentFor(issuerLabel(issuer), u.Username, secret), nil
}

// issuerLabel is how authenticator apps list stile's accounts: "stile" and
// the issuer's host name (a ':' would break the otpauth label).
func issuerLabel(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Hostname() == "" {
		return "stile"
	}
	return "stile " + u.Hostname()
}

// demoPassword is random, readable and typeable: four groups of four.
func demoPassword() string {
	t := strings.ToLower(rand.Text())
	return t[0:4] + "-" + t[4:8] + "-" + t[8:12] + "-" + t[12:16]
}

func (s *demoSeed) print(w io.Writer, issuer string) {
	fmt.Fprintf(w, `
stile is running at %s (demo mode)

  Username     %s
  Password     %s   (new at every start)
  TOTP secret  %s
  otpauth URL  %s

Scan this with an authenticator app (or type the secret into one):

`, issuer, s.username, s.password, s.totp.Secret, s.totp.URL)
	printQR(w, s.totp.URL)
	fmt.Fprintf(w, `
Then sign in:  %s%s
or on the example custom login page (the JSON login API):  %s%s

`, issuer, demo.LoginPath, issuer, demo.CustomStartPath)
	fmt.Fprintf(w, `Backend client, for the README's token examples (paste into your shell):

  export DEMO_BACKEND_ID=%s DEMO_BACKEND_SECRET=%s

`, s.backend.ID, s.backend.Secret)
}

// printQR draws a QR code with half-height blocks, small enough for a terminal.
func printQR(w io.Writer, text string) {
	qrterminal.GenerateWithConfig(text, qrterminal.Config{
		Level: qrterminal.L, Writer: w, HalfBlocks: true, QuietZone: 2,
		BlackChar: qrterminal.BLACK_BLACK, WhiteBlackChar: qrterminal.WHITE_BLACK,
		WhiteChar: qrterminal.WHITE_WHITE, BlackWhiteChar: qrterminal.BLACK_WHITE,
	})
}
