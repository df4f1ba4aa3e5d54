package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/storage"
)

func (c *cli) userCommand() *cobra.Command {
	cmd := groupCommand("user", "Manage users")
	cmd.AddCommand(c.userAddCommand(), c.userListCommand(), c.userShowCommand(), c.userUpdateCommand(),
		c.userDisableCommand(), c.userEnableCommand(), c.userSetPasswordCommand(), c.userTOTPCommand(),
		c.userResetOTPCommand(), c.userEnrollLinkCommand(), c.userRecoveryCodesCommand(), c.userDeleteCommand(),
		c.userSessionsCommand(), c.userImportCommand())
	return cmd
}

// userView is how commands print a user.
type userView struct {
	*storage.User
	TOTPEnrolled bool `json:"totp_enrolled"`
}

func (c *cli) userAddCommand() *cobra.Command {
	var (
		n             = account.NewUser{SkipEnrollLink: true}
		roles, attrs  []string
		attrsJSON     string
		passwordStdin bool
	)
	cmd := &cobra.Command{
		Use:   "add --username NAME [flags]",
		Short: "Create a user (give it a second factor with `stile user totp`)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n.Username == "" {
				return errors.New("--username is required")
			}
			var err error
			if n.Attributes, err = parseAttributes(attrsJSON, attrs); err != nil {
				return err
			}
			n.Roles = roles
			if passwordStdin {
				if n.Password, err = c.readPassword(); err != nil {
					return err
				}
			}
			return c.userAdd(cmd.Context(), n)
		},
	}
	f := cmd.Flags()
	f.StringVar(&n.Username, "username", "", "login name, unique ignoring letter case")
	f.StringVar(&n.Email, "email", "", "email address, unique ignoring letter case")
	f.StringArrayVar(&roles, "role", nil, "a role for the roles claim (repeatable)")
	f.StringArrayVar(&attrs, "attribute", nil, "key=value for the attributes claim; a JSON value is kept as JSON (repeatable)")
	f.StringVar(&attrsJSON, "attributes", "", `all attributes as one JSON object, e.g. '{"plan":"pro"}'`)
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	f.BoolVar(&n.Disabled, "disabled", false, "create the user disabled")
	c.addJSON(cmd)
	return cmd
}

func (c *cli) userAdd(ctx context.Context, n account.NewUser) error {
	return c.withEnv(ctx, func(env *environment) error {
		created, err := env.accounts("").Create(ctx, operator(), n)
		if err != nil {
			return userError(err, "--role")
		}
		u := created.User
		if c.jsonOut {
			return c.printJSON(userView{User: u})
		}
		fmt.Fprintf(c.stdout, "created user %s (uid %s)\n", u.Username, u.ID)
		if u.PasswordHash == "" {
			fmt.Fprintln(c.stdout, "it has no password and cannot sign in: give it one with --password-stdin, "+
				"or send it an enrolment link (stile user enroll-link), on which it chooses one")
		}
		fmt.Fprintf(c.stdout, "next, enrol its authenticator app: stile user totp %s\n", u.Username)
		return nil
	})
}

// userError names the flag behind the service's refusal of a user;
// roleFlags are the flags that gave roles.
func userError(err error, roleFlags string) error {
	var fe *account.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	flag := map[string]string{"username": "--username", "email": "--email", "phone": "--phone",
		"preferred_method": "--preferred-method", "roles": roleFlags, "attributes": "--attribute/--attributes",
		"password": "--password-stdin", "attribute": "--attribute"}[fe.Field]
	if flag == "" {
		return err
	}
	return fmt.Errorf("%s: %s", flag, fe.Reason)
}

// readPassword reads a password from standard input (one line; a final
// newline is not part of it) and checks the policy.
func (c *cli) readPassword() (string, error) {
	b := make([]byte, account.MaxPasswordLength+3) // room for a newline, and one byte to tell "too long"
	n, err := readFull(c.stdin, b)
	if err != nil {
		return "", fmt.Errorf("--password-stdin: %w", err)
	}
	pw := strings.TrimRight(string(b[:n]), "\r\n")
	if err := account.CheckPasswordPolicy(pw); err != nil {
		return "", fmt.Errorf("--password-stdin: %w", err)
	}
	return pw, nil
}

// parseAttributes merges a JSON object and key=value pairs. A value that
// parses as JSON keeps its type ("3" is a number, "true" a boolean);
// anything else is a string.
func parseAttributes(jsonObj string, pairs []string) (storage.Attributes, error) {
	attrs := storage.Attributes{}
	if jsonObj != "" {
		if err := json.Unmarshal([]byte(jsonObj), &attrs); err != nil {
			return nil, fmt.Errorf("--attributes: not a JSON object: %w", err)
		}
	}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--attribute %q: use key=value", p)
		}
		var val any
		if err := json.Unmarshal([]byte(v), &val); err != nil {
			val = v
		}
		attrs[k] = val
	}
	return attrs, nil
}

func (c *cli) userShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show USERNAME|UID",
		Short: "Show a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withUser(cmd.Context(), args[0], func(env *environment, u *storage.User) error {
				return c.showUser(cmd.Context(), env.accounts(""), u)
			})
		},
	}
	c.addJSON(cmd)
	return cmd
}

func (c *cli) printUser(v userView) error {
	roles, _ := json.Marshal(v.Roles)
	attrs, _ := json.Marshal(v.Attributes)
	return c.printTable([][2]string{
		{"uid", v.ID}, {"username", v.Username}, {"email", v.Email},
		{"roles", string(roles)}, {"attributes", string(attrs)},
		{"disabled", fmt.Sprint(v.Disabled)}, {"password set", fmt.Sprint(v.PasswordHash != "")},
		{"totp enrolled", fmt.Sprint(v.TOTPEnrolled)}, {"second factor", secondFactor(v)}, {"created", v.CreatedAt.Format("2006-01-02 15:04:05 MST")},
	})
}

func (c *cli) userTOTPCommand() *cobra.Command {
	var issuer string
	cmd := &cobra.Command{
		Use:   "totp USERNAME|UID",
		Short: "Enrol a new authenticator app for a user, replacing any previous one",
		Long: "Enrol a new authenticator app for a user, replacing any previous one. The secret is\n" +
			"printed once, as text, as an otpauth:// URL and as a QR code: hand it to the user over\n" +
			"a channel you trust.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.userTOTP(cmd.Context(), args[0], issuer)
		},
	}
	issuerFlag(cmd, &issuer)
	c.addJSON(cmd)
	return cmd
}

func (c *cli) userTOTP(ctx context.Context, ref, issuer string) error {
	return c.withUser(ctx, ref, func(env *environment, u *storage.User) error {
		e, err := env.accounts(issuer).EnrollTOTP(ctx, operator(), u.ID)
		if err != nil {
			return err
		}
		if c.jsonOut {
			return c.printJSON(map[string]string{"uid": u.ID, "username": u.Username, "secret": e.Secret, "otpauth_url": e.URL})
		}
		fmt.Fprintf(c.stdout, "New authenticator secret for %s (any earlier one no longer works):\n\n", u.Username)
		fmt.Fprintf(c.stdout, "  secret       %s\n  otpauth URL  %s\n\n", e.Secret, e.URL)
		printQR(c.stdout, e.URL)
		return nil
	})
}

// secondFactor says how the user proves the second step.
func secondFactor(v userView) string {
	switch {
	case v.OTPExempt:
		return "EXEMPT: signs in with the password alone (for conformance tests only)"
	case v.TOTPEnrolled:
		return "TOTP"
	default:
		return "none: cannot sign in until enrolled"
	}
}
