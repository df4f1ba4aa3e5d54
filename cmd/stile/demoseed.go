package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/mdp/qrterminal/v3"

	"github.com/stile-id/stile/demo"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
)

// Names of what --demo seeds.
const (
	demoClientID = "demo"
	demoUsername = "demo"
)

// demoSeed is what --demo prints so a newcomer can sign in.
type demoSeed struct {
	clientID, clientSecret string
	username, password     string
	totp                   *login.Enrollment
}

// seedDemo registers the demo client and the demo user with TOTP enrolled.
// The client secret and the user's password are new at every start (only
// their hashes are stored, and they are printed); the TOTP secret is kept,
// so an authenticator app set up once keeps working.
func seedDemo(ctx context.Context, env *environment, issuer string) (*demoSeed, error) {
	s := &demoSeed{clientID: demoClientID, clientSecret: op.NewClientSecret(), username: demoUsername, password: demoPassword()}
	if err := seedDemoClient(ctx, env, issuer, s.clientSecret); err != nil {
		return nil, fmt.Errorf("seed demo client: %w", err)
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

func seedDemoClient(ctx context.Context, env *environment, issuer, secret string) error {
	digest := op.SecretDigest(op.SecretKey(env.master), secret)
	redirect := storage.Strings{issuer + demo.CallbackPath}
	_, err := env.db.UpdateClient(ctx, demoClientID, func(c *storage.Client) error {
		c.SecretHash, c.RedirectURIs = digest, redirect
		return nil
	})
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return env.db.CreateClient(ctx, &storage.Client{
		ID: demoClientID, Name: "stile demo", Type: storage.ClientWeb, AuthMethod: storage.AuthSecretBasic,
		SecretHash: digest, RedirectURIs: redirect, RequirePKCE: true, FirstParty: true,
	})
}

// demoTOTP returns the demo user's enrolment, creating it the first time.
func demoTOTP(ctx context.Context, env *environment, issuer string, u *storage.User) (*login.Enrollment, error) {
	_, secret, err := login.OpenTOTP(ctx, env.db, env.sealer, u.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return login.EnrollTOTP(ctx, env.db, env.sealer, issuerLabel(issuer), u)
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

`, issuer, demo.LoginPath)
}

// printQR draws a QR code with half-height blocks, small enough for a terminal.
func printQR(w io.Writer, text string) {
	qrterminal.GenerateWithConfig(text, qrterminal.Config{
		Level: qrterminal.L, Writer: w, HalfBlocks: true, QuietZone: 2,
		BlackChar: qrterminal.BLACK_BLACK, WhiteBlackChar: qrterminal.WHITE_BLACK,
		WhiteChar: qrterminal.WHITE_WHITE, BlackWhiteChar: qrterminal.BLACK_WHITE,
	})
}
