package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
)

func (c *cli) clientCommand() *cobra.Command {
	cmd := groupCommand("client", "Manage OpenID clients (relying parties)")
	cmd.AddCommand(c.clientAddCommand(), c.clientListCommand(), c.clientShowCommand(), c.clientUpdateCommand(),
		c.clientRemoveCommand())
	return cmd
}

// clientView is how commands print a client; the secret appears only when
// it was just created or rotated.
type clientView struct {
	*storage.Client
	Secret string `json:"client_secret,omitempty"`
	APIKey string `json:"api_key,omitempty"` // the direct mode's, shown once
}

// clientFlags are the flags that describe a client's metadata, shared by
// `client add` and `client update`.
type clientFlags struct {
	cl                            storage.Client
	redirects, postLogout, origin []string
	audiences, grants, scopes     []string
	noPKCE                        bool
	accessTTL, idTTL              time.Duration
	refreshIdle, refreshAbs       time.Duration
	secretStdin, rotateSecret     bool
	policy                        string
	headless, rotateAPIKey        bool
	signupRoles, signupAttrs      []string
}

func (f *clientFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.cl.Name, "name", "", "display name, shown on the login and consent pages")
	fs.StringVar(&f.cl.Type, "type", "", "web (confidential, server side), spa or native (public)")
	fs.StringVar(&f.cl.AuthMethod, "auth-method", "", "client_secret_basic (default for web), client_secret_post, or none (public clients)")
	fs.StringArrayVar(&f.grants, "grant-type", nil, "authorization_code (implied by a redirect URI), refresh_token, "+
		"client_credentials (web clients: a token for the client itself) (repeatable)")
	fs.StringArrayVar(&f.scopes, "scope", nil, "a scope client_credentials may grant this client, e.g. stile:admin "+
		"for the management API, which a token request must name (repeatable; none unless given; --scope '' clears)")
	fs.StringArrayVar(&f.redirects, "redirect-uri", nil, "an allowed redirect URI, matched exactly (repeatable)")
	fs.StringArrayVar(&f.postLogout, "post-logout-redirect-uri", nil, "an allowed post-logout redirect URI (repeatable)")
	fs.StringArrayVar(&f.origin, "web-origin", nil, "a browser origin allowed to call the token and userinfo endpoints (repeatable)")
	fs.StringArrayVar(&f.audiences, "audience", nil, "an aud value for its access tokens, e.g. your API's URL (repeatable; default: the client_id)")
	fs.BoolVar(&f.noPKCE, "no-require-pkce", false, "let a web client skip PKCE (not recommended; public clients always use it)")
	fs.StringVar(&f.cl.AccessTokenFormat, "access-token-format", storage.TokenFormatJWT, "jwt (validate offline via JWKS) or opaque (validate by introspection)")
	fs.DurationVar(&f.accessTTL, "access-token-lifetime", 0, "access token lifetime, e.g. 5m (0: the server's, 10m)")
	fs.DurationVar(&f.idTTL, "id-token-lifetime", 0, "ID token lifetime (0: the server's, 10m)")
	fs.DurationVar(&f.refreshIdle, "refresh-token-idle", 0, "a refresh token unused this long expires (0: the server's, 14 days)")
	fs.DurationVar(&f.refreshAbs, "refresh-token-absolute", 0, "refresh tokens expire this long after the sign-in (0: the server's, 90 days)")
	fs.BoolVar(&f.cl.FirstParty, "first-party", false, "the operator's own application: no consent page")
	fs.StringVar(&f.cl.LoginURL, "login-url", "", "a custom login page on the JSON login API")
	fs.BoolVar(&f.secretStdin, "secret-stdin", false, "read the client secret from standard input instead of generating one")
	fs.StringVar(&f.policy, "enrollment-policy", storage.EnrollRefuse, "what a user without a second factor gets after the password: "+
		strings.Join(storage.EnrollmentPolicies, ", "))
	fs.BoolVar(&f.headless, "headless", false, "enable the direct mode for this (web) client; an apiKey is printed once")
	fs.BoolVar(&f.cl.FirstPartyApp, "first-party-app", false, "open the authorization challenge endpoint to this first-party "+
		"client: its own sign-in screen, no browser (draft-ietf-oauth-first-party-apps-04)")
	fs.BoolVar(&f.cl.Passwordless, "passwordless", false, "let its users sign in with a code sent by email or SMS alone "+
		"(one factor: amr otp, no mfa)")
	fs.BoolVar(&f.cl.Signup, "signup", false, "let people create their own account when signing in to this client")
	fs.StringArrayVar(&f.signupRoles, "signup-role", nil, "a role a signed-up account starts with (repeatable; --signup-role '' clears)")
	fs.StringArrayVar(&f.signupAttrs, "signup-attribute", nil, "key=value an account signed up here starts with; "+
		"a JSON value is kept as JSON (repeatable; --signup-attribute '' clears)")
	fs.StringVar(&f.cl.SigningAlg, "id-token-signed-response-alg", "", "sign this client's ID and JWT access tokens with "+
		strings.Join(storage.SigningAlgorithms, ", ")+" whatever the server's default (empty: the default)")
}

// apply copies the flags onto cl: all of them for a new client, only the
// ones given for an update.
func (f *clientFlags) apply(fs *pflag.FlagSet, cl *storage.Client, all bool) error {
	set := func(name string) bool { return all || fs.Changed(name) }
	if set("name") {
		cl.Name = f.cl.Name
	}
	if set("type") {
		cl.Type = f.cl.Type
	}
	if set("auth-method") {
		cl.AuthMethod = f.cl.AuthMethod
	}
	lists := []struct {
		flag string
		dst  *storage.Strings
		src  []string
	}{{"grant-type", &cl.GrantTypes, f.grants}, {"redirect-uri", &cl.RedirectURIs, f.redirects},
		{"post-logout-redirect-uri", &cl.PostLogoutRedirectURIs, f.postLogout}, {"web-origin", &cl.WebOrigins, f.origin},
		{"audience", &cl.Audiences, f.audiences}}
	for _, l := range lists {
		if set(l.flag) {
			*l.dst = storage.Strings(l.src)
		}
	}
	if set("scope") {
		cl.AllowedScopes = storage.Strings(slices.DeleteFunc(slices.Clone(f.scopes), func(s string) bool { return s == "" }))
	}
	if set("no-require-pkce") {
		cl.RequirePKCE = !f.noPKCE
	}
	if set("access-token-format") {
		cl.AccessTokenFormat = f.cl.AccessTokenFormat
	}
	durations := []struct {
		flag string
		dst  *storage.Seconds
		src  time.Duration
	}{{"access-token-lifetime", &cl.AccessTokenLifetime, f.accessTTL}, {"id-token-lifetime", &cl.IDTokenLifetime, f.idTTL},
		{"refresh-token-idle", &cl.RefreshTokenIdle, f.refreshIdle}, {"refresh-token-absolute", &cl.RefreshTokenAbsolute, f.refreshAbs}}
	for _, d := range durations {
		if set(d.flag) {
			if d.src < 0 {
				return fmt.Errorf("--%s: must not be negative", d.flag)
			}
			*d.dst = storage.Seconds(d.src)
		}
	}
	if set("first-party") {
		cl.FirstParty = f.cl.FirstParty
	}
	if set("login-url") {
		cl.LoginURL = f.cl.LoginURL
	}
	if set("enrollment-policy") {
		cl.EnrollmentPolicy = f.policy
	}
	if set("headless") {
		cl.Headless = f.headless
	}
	if set("id-token-signed-response-alg") {
		cl.SigningAlg = f.cl.SigningAlg
	}
	if err := f.applySwitches(cl, set); err != nil {
		return err
	}
	return checkClientKind(cl, fs.Changed("auth-method"))
}

// applySwitches copies the sign-in switches of issue 12: the challenge
// endpoint, passwordless codes and sign-up with its defaults.
func (f *clientFlags) applySwitches(cl *storage.Client, set func(string) bool) error {
	switches := []struct {
		flag     string
		dst, src *bool
	}{{"first-party-app", &cl.FirstPartyApp, &f.cl.FirstPartyApp}, {"passwordless", &cl.Passwordless, &f.cl.Passwordless},
		{"signup", &cl.Signup, &f.cl.Signup}}
	for _, sw := range switches {
		if set(sw.flag) {
			*sw.dst = *sw.src
		}
	}
	if set("signup-role") {
		cl.SignupRoles = storage.Strings(slices.DeleteFunc(slices.Clone(f.signupRoles), func(s string) bool { return s == "" }))
	}
	if set("signup-attribute") {
		pairs := slices.DeleteFunc(slices.Clone(f.signupAttrs), func(s string) bool { return s == "" })
		for _, p := range pairs {
			if k, _, ok := strings.Cut(p, "="); !ok || k == "" {
				return fmt.Errorf("--signup-attribute %q: use key=value", p)
			}
		}
		attrs, err := parseAttributes("", pairs)
		if err != nil {
			return err
		}
		cl.SignupAttributes = attrs
	}
	return nil
}

// checkClientKind checks type and authentication method, which name the
// flag at fault, and fills in the method's default for the type.
func checkClientKind(cl *storage.Client, methodGiven bool) error {
	if cl.Type != storage.ClientWeb && cl.Type != storage.ClientSPA && cl.Type != storage.ClientNative {
		return fmt.Errorf("--type %q: use web, spa or native", cl.Type)
	}
	public := cl.Public()
	if !methodGiven && (cl.AuthMethod == "" || public != (cl.AuthMethod == storage.AuthNone)) {
		cl.AuthMethod = map[bool]string{true: storage.AuthNone, false: storage.AuthSecretBasic}[public]
	}
	if public && cl.AuthMethod != storage.AuthNone {
		return fmt.Errorf("--auth-method %s: a %s client is public and uses none", cl.AuthMethod, cl.Type)
	}
	if !public && cl.AuthMethod != storage.AuthSecretBasic && cl.AuthMethod != storage.AuthSecretPost {
		return fmt.Errorf("--auth-method %q: use client_secret_basic or client_secret_post", cl.AuthMethod)
	}
	if public && !cl.RequirePKCE {
		return fmt.Errorf("--no-require-pkce: a %s client always uses PKCE", cl.Type)
	}
	return checkGrants(cl)
}

// checkGrants checks the grant types, which name the flag at fault. A
// client with redirect URIs signs users in, so authorization_code is
// implied; one without them and with client_credentials alone is a
// machine client.
func checkGrants(cl *storage.Client) error {
	for _, g := range cl.GrantTypes {
		if !slices.Contains(storage.Grants, g) {
			return fmt.Errorf("--grant-type %q: use authorization_code, refresh_token or client_credentials", g)
		}
	}
	if cl.Public() && cl.GrantTypes.Contains(storage.GrantClientCredentials) {
		return fmt.Errorf("--grant-type client_credentials: a %s client is public and cannot keep a secret to authenticate with; "+
			"register a web client for it", cl.Type)
	}
	implied := len(cl.RedirectURIs) > 0 || cl.GrantTypes.Contains(storage.GrantRefreshToken)
	if len(cl.GrantTypes) > 0 && implied && !cl.GrantTypes.Contains(storage.GrantAuthorizationCode) {
		cl.GrantTypes = append(storage.Strings{storage.GrantAuthorizationCode}, cl.GrantTypes...)
	}
	return nil
}

// stdinSecret reads the secret given with --secret-stdin ("" without it).
// Commands read it before they open a transaction, as the operator may
// still be typing and the store would be locked meanwhile.
func (f *clientFlags) stdinSecret(c *cli) (string, error) {
	if !f.secretStdin {
		return "", nil
	}
	b := make([]byte, 1024)
	n, err := readFull(c.stdin, b)
	if err != nil {
		return "", fmt.Errorf("--secret-stdin: %w", err)
	}
	secret := strings.TrimRight(string(b[:n]), "\r\n")
	if len(secret) < 32 {
		return "", errors.New("--secret-stdin: use at least 32 random characters (or let stile generate the secret)")
	}
	return secret, nil
}

// rekey settles cl's secret once its flags are applied: a public client
// has none; a web client gets the given one, or a generated one when
// --rotate-secret asks or it has none yet (new, or public until now). It
// returns the new secret, to be shown this once: stile keeps its digest.
func (f *clientFlags) rekey(env *environment, cl *storage.Client, given string) (string, error) {
	if cl.Public() {
		if given != "" || f.rotateSecret {
			flag := map[bool]string{true: "--secret-stdin", false: "--rotate-secret"}[given != ""]
			return "", fmt.Errorf("%s: a %s client is public and has no secret", flag, cl.Type)
		}
		cl.SecretHash = nil
		return "", nil
	}
	secret := given
	if secret == "" {
		if cl.SecretHash != nil && !f.rotateSecret {
			return "", nil
		}
		secret = op.NewClientSecret()
	}
	cl.SecretHash = op.SecretDigest(op.SecretKey(env.master), secret)
	return secret, nil
}

// storeError names the flag behind the store's refusal of client id.
func (f *clientFlags) storeError(id string, err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("no client %q", id)
	case errors.Is(err, storage.ErrConflict):
		return fmt.Errorf("--id: a client %q already exists", id)
	}
	// The store checks both lists of redirect URIs alike; the URI it
	// quotes tells which flag gave it.
	redirect := "--redirect-uri"
	for _, u := range f.postLogout {
		if strings.Contains(err.Error(), strconv.Quote(u)) && !slices.Contains(f.redirects, u) {
			redirect = "--post-logout-redirect-uri"
		}
	}
	return flagError(err, [][2]string{{"client_id", "--id"}, {"type", "--type"}, {"auth_method", "--auth-method"},
		{"require_pkce", "--no-require-pkce"}, {"grant_type", "--grant-type"}, {"redirect", redirect},
		{"web origin", "--web-origin"}, {"access_token_format", "--access-token-format"},
		{"enrollment_policy", "--enrollment-policy"}, {"headless", "--headless"}, {"login_url", "--login-url"},
		{"id_token_signed_response_alg", "--id-token-signed-response-alg"}, {"allowed scope", "--scope"}})
}

func (c *cli) clientAddCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "add --id ID --type web|spa|native (--redirect-uri URI | --grant-type client_credentials) [flags]",
		Short: "Register a client; a web client's secret is printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := &storage.Client{ID: f.cl.ID}
			if cl.ID == "" {
				return errors.New("--id is required")
			}
			if err := f.apply(cmd.Flags(), cl, true); err != nil {
				return err
			}
			if len(f.redirects) == 0 && !cl.GrantTypes.Contains(storage.GrantClientCredentials) {
				return errors.New("--redirect-uri: give at least one (a machine client without one: --type web --grant-type client_credentials)")
			}
			given, err := f.stdinSecret(c)
			if err != nil {
				return err
			}
			return c.clientAdd(cmd.Context(), &f, cl, given)
		},
	}
	cmd.Flags().StringVar(&f.cl.ID, "id", "", "client_id (letters, digits, '.', '_', '~', '-')")
	f.register(cmd.Flags())
	c.addJSON(cmd)
	return cmd
}

func (c *cli) clientAdd(ctx context.Context, f *clientFlags, cl *storage.Client, given string) error {
	return c.withEnv(ctx, func(env *environment) error {
		secret, err := f.rekey(env, cl, given)
		if err != nil {
			return err
		}
		apiKey, err := f.rekeyDirect(env, cl)
		if err != nil {
			return err
		}
		if err := env.db.CreateClient(ctx, cl); err != nil {
			return f.storeError(cl.ID, err)
		}
		if err := ensurePinnedKey(ctx, env, cl); err != nil {
			return err
		}
		env.audit(ctx, "client.created", storage.Attributes{"client_id": cl.ID})
		return c.printSaved(cl, secret, apiKey, "created")
	})
}

// rekeyDirect keeps the direct mode's apiKey in step with the client's
// flags: a new key when the mode is turned on or --rotate-api-key asks,
// none while the mode is off (turning it on again makes a new one). It
// returns a new key, to be shown this once: stile keeps its MAC.
func (f *clientFlags) rekeyDirect(env *environment, cl *storage.Client) (string, error) {
	switch {
	case !cl.Headless && f.rotateAPIKey:
		return "", errors.New("--rotate-api-key: the client's direct mode is off; turn it on with --headless")
	case !cl.Headless:
		cl.APIKeyID, cl.APIKeyMAC = storage.NullString{}, nil
		return "", nil
	case cl.APIKeyID.Valid && !f.rotateAPIKey:
		return "", nil
	}
	key, id, mac := login.NewAPIKey(codeKeys(env.master).APIKey)
	cl.APIKeyID, cl.APIKeyMAC = storage.NullString{String: id, Valid: true}, mac
	return key, nil
}

// printSaved reports a stored client; a new secret or apiKey is shown this once.
func (c *cli) printSaved(cl *storage.Client, secret, apiKey, verb string) error {
	if c.jsonOut {
		return c.printJSON(clientView{Client: cl, Secret: secret, APIKey: apiKey})
	}
	fmt.Fprintf(c.stdout, "%s %s client %s\n", verb, cl.Type, cl.ID)
	if secret != "" {
		fmt.Fprintf(c.stdout, "client_secret: %s\n(shown once: stile keeps only a digest of it)\n", secret)
	}
	if apiKey != "" {
		fmt.Fprintf(c.stdout, "apiKey (direct mode): %s\n(shown once: give it to the backend only)\n", apiKey)
	}
	return nil
}

func (c *cli) clientShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show CLIENT_ID",
		Short: "Show a client",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withEnv(cmd.Context(), func(env *environment) error {
				cl, err := getClient(cmd.Context(), env.db, args[0])
				if err != nil {
					return err
				}
				if c.jsonOut {
					return c.printJSON(clientView{Client: cl})
				}
				return c.printClient(cl)
			})
		},
	}
	c.addJSON(cmd)
	return cmd
}

func getClient(ctx context.Context, db *storage.DB, id string) (*storage.Client, error) {
	cl, err := db.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("no client %q", id)
	}
	return cl, err
}

func (c *cli) printClient(cl *storage.Client) error {
	list := func(s storage.Strings) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	lifetime := func(s storage.Seconds) string {
		if s == 0 {
			return "server default"
		}
		return time.Duration(s).String()
	}
	return c.printTable([][2]string{
		{"client_id", cl.ID}, {"name", cl.Name}, {"type", cl.Type}, {"auth method", cl.AuthMethod},
		{"grant types", list(cl.GrantTypes)}, {"redirect URIs", list(cl.RedirectURIs)},
		{"post-logout redirect URIs", list(cl.PostLogoutRedirectURIs)}, {"web origins", list(cl.WebOrigins)},
		{"require PKCE", fmt.Sprint(cl.RequirePKCE)}, {"access token format", cl.AccessTokenFormat},
		{"audiences", list(cl.Audiences)}, {"access token lifetime", lifetime(cl.AccessTokenLifetime)},
		{"ID token lifetime", lifetime(cl.IDTokenLifetime)}, {"refresh token idle", lifetime(cl.RefreshTokenIdle)},
		{"refresh token absolute", lifetime(cl.RefreshTokenAbsolute)}, {"first party", fmt.Sprint(cl.FirstParty)},
		{"login URL", cl.LoginURL}, {"enrollment policy", cl.EnrollmentPolicy},
		{"direct mode", fmt.Sprint(cl.Headless)}, {"ID token signing alg", signingAlgView(cl.SigningAlg)},
		{"allowed scopes", list(cl.AllowedScopes)}, {"first-party app", fmt.Sprint(cl.FirstPartyApp)},
		{"passwordless", fmt.Sprint(cl.Passwordless)}, {"sign-up", fmt.Sprint(cl.Signup)},
		{"sign-up roles", list(cl.SignupRoles)}, {"sign-up attributes", attrsView(cl.SignupAttributes)},
	})
}

func attrsView(a storage.Attributes) string {
	if a == nil {
		a = storage.Attributes{}
	}
	b, _ := json.Marshal(a)
	return string(b)
}

func signingAlgView(alg string) string {
	if alg == "" {
		return "server default"
	}
	return alg
}

// ensurePinnedKey gives a client's pinned algorithm an active key now, so
// `keys list` and discovery show it before the first token needs it.
func ensurePinnedKey(ctx context.Context, env *environment, cl *storage.Client) error {
	if cl.SigningAlg == "" {
		return nil
	}
	m := keys.NewManager(env.db, env.sealer, time.Now, max(op.DefaultLifetimes.AccessToken, op.DefaultLifetimes.IDToken))
	if err := m.EnsurePinned(ctx, cl.SigningAlg); err != nil {
		return fmt.Errorf("a %s key for client %q: %w", cl.SigningAlg, cl.ID, err)
	}
	return nil
}
