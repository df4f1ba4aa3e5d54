package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
)

func (c *cli) clientCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Manage OpenID clients (relying parties)"}
	cmd.AddCommand(c.clientAddCommand(), c.clientShowCommand())
	return cmd
}

// clientView is how commands print a client; the secret appears only when
// it was just created.
type clientView struct {
	*storage.Client
	Secret string `json:"client_secret,omitempty"`
}

// clientFlags are the flags that describe a client's metadata.
type clientFlags struct {
	cl                            storage.Client
	redirects, postLogout, origin []string
	audiences                     []string
	noPKCE                        bool
	accessTTL, idTTL              time.Duration
	secretStdin                   bool
}

func (f *clientFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.cl.ID, "id", "", "client_id (letters, digits, '.', '_', '~', '-')")
	fs.StringVar(&f.cl.Name, "name", "", "display name, shown on the login page")
	fs.StringVar(&f.cl.Type, "type", "", "web (confidential, server side), spa or native (public)")
	fs.StringVar(&f.cl.AuthMethod, "auth-method", "", "client_secret_basic (default for web), client_secret_post, or none (public clients)")
	fs.StringArrayVar(&f.redirects, "redirect-uri", nil, "an allowed redirect URI, matched exactly (repeatable)")
	fs.StringArrayVar(&f.postLogout, "post-logout-redirect-uri", nil, "an allowed post-logout redirect URI (repeatable)")
	fs.StringArrayVar(&f.origin, "web-origin", nil, "a browser origin allowed to call the token and userinfo endpoints (repeatable)")
	fs.StringArrayVar(&f.audiences, "audience", nil, "an aud value for its access tokens, e.g. your API's URL (repeatable; default: the client_id)")
	fs.BoolVar(&f.noPKCE, "no-require-pkce", false, "let a web client skip PKCE (not recommended; public clients always use it)")
	fs.StringVar(&f.cl.AccessTokenFormat, "access-token-format", storage.TokenFormatJWT, "jwt (validate offline via JWKS) or opaque (validate by introspection)")
	fs.DurationVar(&f.accessTTL, "access-token-lifetime", 0, "access token lifetime, e.g. 5m (default: the server's, 10m)")
	fs.DurationVar(&f.idTTL, "id-token-lifetime", 0, "ID token lifetime (default: the server's, 10m)")
	fs.BoolVar(&f.cl.FirstParty, "first-party", false, "the operator's own application (consent is skipped)")
	fs.StringVar(&f.cl.LoginURL, "login-url", "", "a custom login page on the JSON login API")
	fs.BoolVar(&f.secretStdin, "secret-stdin", false, "read the client secret from standard input instead of generating one")
}

// build checks the flags and returns the client to store, and its secret.
func (f *clientFlags) build(c *cli) (*storage.Client, string, error) {
	cl := f.cl
	switch {
	case cl.ID == "":
		return nil, "", errors.New("--id is required")
	case cl.Type != storage.ClientWeb && cl.Type != storage.ClientSPA && cl.Type != storage.ClientNative:
		return nil, "", fmt.Errorf("--type %q: use web, spa or native", cl.Type)
	case len(f.redirects) == 0:
		return nil, "", errors.New("--redirect-uri: give at least one")
	case f.accessTTL < 0 || f.idTTL < 0:
		return nil, "", errors.New("--access-token-lifetime, --id-token-lifetime: must not be negative")
	}
	public := cl.Type != storage.ClientWeb
	if cl.AuthMethod == "" {
		cl.AuthMethod = map[bool]string{true: storage.AuthNone, false: storage.AuthSecretBasic}[public]
	}
	if public && cl.AuthMethod != storage.AuthNone {
		return nil, "", fmt.Errorf("--auth-method %s: a %s client is public and uses none", cl.AuthMethod, cl.Type)
	}
	if !public && cl.AuthMethod != storage.AuthSecretBasic && cl.AuthMethod != storage.AuthSecretPost {
		return nil, "", fmt.Errorf("--auth-method %q: use client_secret_basic or client_secret_post", cl.AuthMethod)
	}
	if public && f.noPKCE {
		return nil, "", fmt.Errorf("--no-require-pkce: a %s client always uses PKCE", cl.Type)
	}
	cl.RequirePKCE = !f.noPKCE
	cl.RedirectURIs, cl.PostLogoutRedirectURIs = f.redirects, f.postLogout
	cl.WebOrigins, cl.Audiences = f.origin, f.audiences
	cl.AccessTokenLifetime, cl.IDTokenLifetime = storage.Seconds(f.accessTTL), storage.Seconds(f.idTTL)
	if public {
		return &cl, "", nil
	}
	secret := op.NewClientSecret()
	if f.secretStdin {
		b := make([]byte, 1024)
		n, err := readFull(c.stdin, b)
		if err != nil {
			return nil, "", fmt.Errorf("--secret-stdin: %w", err)
		}
		secret = strings.TrimRight(string(b[:n]), "\r\n")
		if len(secret) < 32 {
			return nil, "", errors.New("--secret-stdin: use at least 32 random characters (or let stile generate the secret)")
		}
	}
	return &cl, secret, nil
}

func (c *cli) clientAddCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "add --id ID --type web|spa|native --redirect-uri URI [flags]",
		Short: "Register a client; a web client's secret is printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, secret, err := f.build(c)
			if err != nil {
				return err
			}
			return c.clientAdd(cmd.Context(), cl, secret)
		},
	}
	f.register(cmd)
	c.addJSON(cmd)
	return cmd
}

func (c *cli) clientAdd(ctx context.Context, cl *storage.Client, secret string) error {
	return c.withEnv(ctx, func(env *environment) error {
		if secret != "" {
			cl.SecretHash = op.SecretDigest(op.SecretKey(env.master), secret)
		}
		if err := env.db.CreateClient(ctx, cl); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return fmt.Errorf("--id: a client %q already exists", cl.ID)
			}
			return err
		}
		if c.jsonOut {
			return c.printJSON(clientView{Client: cl, Secret: secret})
		}
		fmt.Fprintf(c.stdout, "created %s client %s\n", cl.Type, cl.ID)
		if secret != "" {
			fmt.Fprintf(c.stdout, "client_secret: %s\n(shown once: stile keeps only a digest of it)\n", secret)
		}
		return nil
	})
}

func (c *cli) clientShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show CLIENT_ID",
		Short: "Show a client",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withEnv(cmd.Context(), func(env *environment) error {
				cl, err := env.db.GetClient(cmd.Context(), args[0])
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client %q", args[0])
				}
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
		{"ID token lifetime", lifetime(cl.IDTokenLifetime)}, {"first party", fmt.Sprint(cl.FirstParty)},
		{"login URL", cl.LoginURL},
	})
}
