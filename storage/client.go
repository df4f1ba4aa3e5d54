package storage

import (
	"context"
	"database/sql/driver"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"
)

// Client types and their authentication.
const (
	ClientWeb    = "web"    // confidential: a server that keeps a secret
	ClientSPA    = "spa"    // public: a browser application
	ClientNative = "native" // public: a mobile or desktop application

	AuthSecretBasic = "client_secret_basic"
	AuthSecretPost  = "client_secret_post"
	AuthNone        = "none"

	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials" // a confidential client's own token, no user

	TokenFormatJWT    = "jwt"
	TokenFormatOpaque = "opaque"
)

// Client is a registered relying party.
type Client struct {
	ID                     string     `db:"id" json:"client_id"`
	Name                   string     `db:"name" json:"name"`
	Type                   string     `db:"type" json:"type"`
	AuthMethod             string     `db:"auth_method" json:"auth_method"`
	SecretHash             []byte     `db:"secret_hash" json:"-"` // HMAC-SHA256 of the secret; nil for public clients
	GrantTypes             Strings    `db:"grant_types" json:"grant_types"`
	RedirectURIs           Strings    `db:"redirect_uris" json:"redirect_uris"`
	PostLogoutRedirectURIs Strings    `db:"post_logout_redirect_uris" json:"post_logout_redirect_uris"`
	WebOrigins             Strings    `db:"web_origins" json:"web_origins"`
	RequirePKCE            bool       `db:"require_pkce" json:"require_pkce"`
	AccessTokenFormat      string     `db:"access_token_format" json:"access_token_format"`
	Audiences              Strings    `db:"audiences" json:"audiences"`
	AccessTokenLifetime    Seconds    `db:"access_token_lifetime" json:"access_token_lifetime"` // 0: server default
	IDTokenLifetime        Seconds    `db:"id_token_lifetime" json:"id_token_lifetime"`
	RefreshTokenIdle       Seconds    `db:"refresh_token_idle" json:"refresh_token_idle"`         // 0: server default
	RefreshTokenAbsolute   Seconds    `db:"refresh_token_absolute" json:"refresh_token_absolute"` // 0: server default
	FirstParty             bool       `db:"first_party" json:"first_party"`
	LoginURL               string     `db:"login_url" json:"login_url"`
	Headless               bool       `db:"headless" json:"headless"`
	APIKeyID               NullString `db:"api_key_id" json:"-"`  // the direct mode's key: its lookup ID…
	APIKeyMAC              []byte     `db:"api_key_mac" json:"-"` // …and the MAC of its secret part
	EnrollmentPolicy       string     `db:"enrollment_policy" json:"enrollment_policy"`
	// SigningAlg pins the algorithm its ID tokens and JWT access tokens are
	// signed with (id_token_signed_response_alg); empty: the default.
	SigningAlg    string  `db:"id_token_signed_response_alg" json:"id_token_signed_response_alg,omitempty"`
	AllowedScopes Strings `db:"allowed_scopes" json:"allowed_scopes"` // what client_credentials may grant; operator-set
	// FirstPartyApp opens the authorization challenge endpoint to the
	// client (draft-ietf-oauth-first-party-apps): its own native login
	// screen, no browser. Only for first-party clients.
	FirstPartyApp bool `db:"first_party_app" json:"first_party_app"`
	// Passwordless lets its users sign in with a code sent to them alone:
	// one factor, labelled so in amr and acr.
	Passwordless bool `db:"passwordless" json:"passwordless"`
	// Signup lets people create their own account when signing in to it;
	// the account starts with SignupRoles and SignupAttributes.
	Signup           bool       `db:"signup" json:"signup"`
	SignupRoles      Strings    `db:"signup_roles" json:"signup_roles"`
	SignupAttributes Attributes `db:"signup_attributes" json:"signup_attributes"`
	CreatedAt        time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt        time.Time  `db:"updated_at" json:"updated_at"`
}

// Public reports whether the client cannot keep a secret.
func (c *Client) Public() bool { return c.Type == ClientSPA || c.Type == ClientNative }

// Seconds is a duration stored as whole seconds.
type Seconds time.Duration

// Value implements driver.Valuer.
func (s Seconds) Value() (driver.Value, error) { return int64(time.Duration(s) / time.Second), nil }

// Scan implements sql.Scanner.
func (s *Seconds) Scan(src any) error {
	n, ok := src.(int64)
	if !ok {
		return fmt.Errorf("scan seconds: unexpected %T", src)
	}
	*s = Seconds(time.Duration(n) * time.Second)
	return nil
}

// MarshalJSON writes whole seconds.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%d", int64(time.Duration(s)/time.Second)), nil
}

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// validate checks the client's metadata for consistency; each problem names
// the field at fault.
func (c *Client) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if !clientIDPattern.MatchString(c.ID) {
		return bad("client_id %q: use 1-128 letters, digits, '.', '_', '~' or '-'", c.ID)
	}
	switch c.Type {
	case ClientWeb:
		if c.AuthMethod != AuthSecretBasic && c.AuthMethod != AuthSecretPost {
			return bad("auth_method %q: a web client authenticates with client_secret_basic or client_secret_post", c.AuthMethod)
		}
		if len(c.SecretHash) == 0 {
			return bad("a web client needs a secret")
		}
	case ClientSPA, ClientNative:
		if c.AuthMethod != AuthNone {
			return bad("auth_method %q: a %s client is public and uses none", c.AuthMethod, c.Type)
		}
		if !c.RequirePKCE {
			return bad("require_pkce: always on for a public client")
		}
	default:
		return bad("type %q: use web, spa or native", c.Type)
	}
	if err := c.validateGrants(); err != nil {
		return err
	}
	for _, list := range []Strings{c.RedirectURIs, c.PostLogoutRedirectURIs} {
		for _, u := range list {
			if err := checkRedirectURI(u); err != nil {
				return bad("redirect URI %q: %v", u, err)
			}
			if c.Type == ClientSPA && !SecureOrLoopback(u) {
				return bad("redirect URI %q: a browser application must use https (http only on loopback, for development)", u)
			}
		}
	}
	for _, o := range c.WebOrigins {
		if err := checkOrigin(o); err != nil {
			return bad("web origin %q: %v", o, err)
		}
	}
	if c.AccessTokenFormat != TokenFormatJWT && c.AccessTokenFormat != TokenFormatOpaque {
		return bad("access_token_format %q: use jwt or opaque", c.AccessTokenFormat)
	}
	if c.AccessTokenLifetime < 0 || c.IDTokenLifetime < 0 || c.RefreshTokenIdle < 0 || c.RefreshTokenAbsolute < 0 {
		return bad("token lifetimes cannot be negative")
	}
	if !slices.Contains(EnrollmentPolicies, c.EnrollmentPolicy) {
		return bad("enrollment_policy %q: use one of %v", c.EnrollmentPolicy, EnrollmentPolicies)
	}
	if c.Headless && c.Public() {
		return bad("headless: the direct mode is for confidential (web) clients only")
	}
	if c.Headless && !c.FirstParty {
		// Its tokens are issued without a consent page: only for the
		// operator's own backends.
		return bad("headless: the direct mode is for first-party clients only (no consent can be asked)")
	}
	if c.FirstPartyApp && !c.FirstParty {
		// Its users type their password into the client's own screen:
		// only the operator's own applications may ask for it.
		return bad("first_party_app: the authorization challenge endpoint is for first-party clients only")
	}
	if c.FirstPartyApp && !c.GrantTypes.Contains(GrantAuthorizationCode) {
		return bad("first_party_app: the challenge endpoint answers with an authorization code: allow the authorization_code grant")
	}
	if err := checkSignupDefaults(c); err != nil {
		return err
	}
	if c.SigningAlg != "" && !slices.Contains(SigningAlgorithms, c.SigningAlg) {
		return bad("id_token_signed_response_alg %q: use one of %v", c.SigningAlg, SigningAlgorithms)
	}
	if c.LoginURL != "" {
		if u, err := url.Parse(c.LoginURL); err != nil || !u.IsAbs() {
			return bad("login_url %q: not an absolute URL", c.LoginURL)
		}
	}
	return nil
}

func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return err
	case !u.IsAbs():
		return fmt.Errorf("not an absolute URI")
	case u.Fragment != "" || u.RawFragment != "":
		return fmt.Errorf("must not have a fragment")
	}
	return nil
}

// SecureOrLoopback reports whether a URI is https, or http on the local
// machine (localhost, 127.0.0.1, ::1) where development servers run.
func SecureOrLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	h := u.Hostname()
	return u.Scheme == "http" && (h == "localhost" || h == "127.0.0.1" || h == "::1")
}

func checkOrigin(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme must be http or https")
	case u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "":
		return fmt.Errorf("an origin is scheme://host[:port] only")
	}
	return nil
}

func (c *Client) fillDefaults() {
	for _, p := range []*Strings{&c.GrantTypes, &c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.WebOrigins, &c.Audiences,
		&c.AllowedScopes, &c.SignupRoles} {
		if *p == nil {
			*p = Strings{}
		}
	}
	if c.SignupAttributes == nil {
		c.SignupAttributes = Attributes{}
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = Strings{GrantAuthorizationCode}
	}
	if c.AccessTokenFormat == "" {
		c.AccessTokenFormat = TokenFormatJWT
	}
	if c.EnrollmentPolicy == "" {
		c.EnrollmentPolicy = EnrollRefuse
	}
}

// Enrollment policies: what a user without a second factor gets after the
// password, on this client.
const (
	EnrollRefuse            = "refuse"              // an error telling them to ask the operator (the default)
	EnrollEmail             = "email"               // a code to the email address on file stands in for the second factor
	EnrollSMS               = "sms"                 // a code to the phone number on file
	EnrollEmailThenTOTP     = "email-then-totp"     // the emailed code, then TOTP enrolment
	EnrollSMSThenTOTP       = "sms-then-totp"       // the texted code, then TOTP enrolment
	EnrollTOTPAfterPassword = "totp-after-password" // the TOTP secret after the password alone: an explicit, logged operator choice
)

// EnrollmentPolicies lists the valid policies.
var EnrollmentPolicies = []string{EnrollRefuse, EnrollEmail, EnrollSMS, EnrollEmailThenTOTP, EnrollSMSThenTOTP, EnrollTOTPAfterPassword}

const clientColumns = `id, name, type, auth_method, secret_hash, grant_types, redirect_uris, post_logout_redirect_uris,
	web_origins, require_pkce, access_token_format, audiences, access_token_lifetime, id_token_lifetime,
	refresh_token_idle, refresh_token_absolute, first_party, login_url, headless, api_key_id, api_key_mac,
	enrollment_policy, id_token_signed_response_alg, allowed_scopes, first_party_app, passwordless, signup,
	signup_roles, signup_attributes, created_at, updated_at`

// CreateClient stores a new client. An ID already taken is ErrConflict.
func (d *DB) CreateClient(ctx context.Context, c *Client) error {
	c.fillDefaults()
	if err := c.validate(); err != nil {
		return err
	}
	c.CreatedAt = d.Now()
	c.UpdatedAt = c.CreatedAt
	const q = `INSERT INTO clients (` + clientColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	if _, err := d.exec(ctx, d.w, q, c.args()...); err != nil {
		return fmt.Errorf("create client %q: %w", c.ID, err)
	}
	d.cachedTablesChanged(ctx)
	return nil
}

func (c *Client) args() []any {
	return []any{c.ID, c.Name, c.Type, c.AuthMethod, c.SecretHash, c.GrantTypes, c.RedirectURIs,
		c.PostLogoutRedirectURIs, c.WebOrigins, c.RequirePKCE, c.AccessTokenFormat, c.Audiences,
		c.AccessTokenLifetime, c.IDTokenLifetime, c.RefreshTokenIdle, c.RefreshTokenAbsolute, c.FirstParty, c.LoginURL,
		c.Headless, c.APIKeyID, c.APIKeyMAC, c.EnrollmentPolicy, c.SigningAlg, c.AllowedScopes, c.FirstPartyApp,
		c.Passwordless, c.Signup, c.SignupRoles, c.SignupAttributes, c.CreatedAt, c.UpdatedAt}
}

// GetClient returns the client with this ID, from memory when the cache
// is on (cache.go).
func (d *DB) GetClient(ctx context.Context, id string) (*Client, error) {
	cached, gen, ok := d.cachedClient(ctx, id)
	if ok {
		return cached, nil
	}
	var c Client
	d.countRead("clients")
	if err := d.get(ctx, d.r, &c, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("get client %q: %w", id, err)
	}
	d.keepClient(gen, &c)
	return &c, nil
}

// UpdateClient reads the client, lets fn change it, and writes it back in
// one transaction. The ID cannot change.
func (d *DB) UpdateClient(ctx context.Context, id string, fn func(*Client) error) (*Client, error) {
	var out Client
	err := d.tx(ctx, func(q queryer) error {
		if err := d.get(ctx, q, &out, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id); err != nil {
			return err
		}
		if err := fn(&out); err != nil {
			return err
		}
		out.ID = id
		out.fillDefaults()
		if err := out.validate(); err != nil {
			return err
		}
		out.UpdatedAt = d.Now()
		const upd = `UPDATE clients SET name = ?, type = ?, auth_method = ?, secret_hash = ?, grant_types = ?,
			redirect_uris = ?, post_logout_redirect_uris = ?, web_origins = ?, require_pkce = ?,
			access_token_format = ?, audiences = ?, access_token_lifetime = ?, id_token_lifetime = ?,
			refresh_token_idle = ?, refresh_token_absolute = ?, first_party = ?, login_url = ?, headless = ?,
			api_key_id = ?, api_key_mac = ?, enrollment_policy = ?, id_token_signed_response_alg = ?, allowed_scopes = ?,
			first_party_app = ?, passwordless = ?, signup = ?, signup_roles = ?, signup_attributes = ?,
			updated_at = ? WHERE id = ?`
		args := out.args()[1:]
		args = append(args[:len(args)-2], out.UpdatedAt, id) // drop created_at/updated_at, add updated_at and the key
		_, err := d.exec(ctx, q, upd, args...)
		return err
	})
	d.cachedTablesChanged(ctx) // even on failure: whatever happened, a reread is safe
	if err != nil {
		return nil, fmt.Errorf("update client %q: %w", id, err)
	}
	return &out, nil
}

// ListClients returns every client, ordered by ID.
func (d *DB) ListClients(ctx context.Context) ([]Client, error) {
	var out []Client
	if err := d.sel(ctx, d.r, &out, `SELECT `+clientColumns+` FROM clients ORDER BY id`); err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return out, nil
}

// DeleteClient removes a client and, with it, its authorization requests,
// consents and tokens.
func (d *DB) DeleteClient(ctx context.Context, id string) error {
	n, err := d.exec(ctx, d.w, `DELETE FROM clients WHERE id = ?`, id)
	d.cachedTablesChanged(ctx)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete client %q: %w", id, err)
	}
	return nil
}

// ClientByAPIKeyID returns the client whose direct-mode API key has this
// lookup ID.
func (d *DB) ClientByAPIKeyID(ctx context.Context, keyID string) (*Client, error) {
	cached, gen, ok := d.cachedAPIKey(ctx, keyID)
	if ok {
		return cached, nil
	}
	var c Client
	d.countRead("clients")
	if err := d.get(ctx, d.r, &c, `SELECT `+clientColumns+` FROM clients WHERE api_key_id = ?`, keyID); err != nil {
		return nil, fmt.Errorf("get client by API key: %w", err)
	}
	d.keepClient(gen, &c)
	return &c, nil
}

// AnyHeadless reports whether some client has the direct mode on.
func (d *DB) AnyHeadless(ctx context.Context) (bool, error) {
	var n int
	if err := d.get(ctx, d.r, &n, `SELECT COUNT(*) FROM clients WHERE headless = TRUE`); err != nil {
		return false, fmt.Errorf("count headless clients: %w", err)
	}
	return n > 0, nil
}

// checkSignupDefaults checks what a signed-up account starts with by the
// rules its user record will be held to.
func checkSignupDefaults(c *Client) error {
	u := User{Username: "signup", Roles: c.SignupRoles, Attributes: c.SignupAttributes}
	if err := u.validate(); err != nil {
		return fmt.Errorf("signup defaults: %w", err)
	}
	return nil
}
