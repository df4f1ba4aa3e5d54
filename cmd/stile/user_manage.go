package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
)

// groupCommand is a command that only holds subcommands: given anything
// else, it says so instead of silently printing help.
func groupCommand(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q; see %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
}

func (c *cli) userListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withEnv(cmd.Context(), func(env *environment) error {
				users, err := env.db.ListUsers(cmd.Context())
				if err != nil {
					return err
				}
				views := make([]userView, len(users))
				for i := range users {
					_, terr := env.db.GetTOTP(cmd.Context(), users[i].ID)
					views[i] = userView{User: &users[i], TOTPEnrolled: terr == nil}
				}
				if c.jsonOut {
					return c.printJSON(views)
				}
				rows := [][]string{{"USERNAME", "UID", "EMAIL", "ROLES", "TOTP", "DISABLED"}}
				for _, v := range views {
					rows = append(rows, []string{v.Username, v.ID, v.Email, fmt.Sprint([]string(v.Roles)),
						fmt.Sprint(v.TOTPEnrolled), fmt.Sprint(v.Disabled)})
				}
				return c.printRows(rows)
			})
		},
	}
	c.addJSON(cmd)
	return cmd
}

// userChange is what `user update` may change; nil means unchanged.
type userChange struct {
	username, email          *string
	roles, addRoles, rmRoles []string
	setRoles                 bool
	attrs                    storage.Attributes
	replaceAttrs             bool
	rmAttrs                  []string
	otpExempt                *bool
	phone, preferred         *string
}

func (ch *userChange) apply(u *storage.User) error {
	if ch.username != nil {
		u.Username = *ch.username
	}
	if ch.email != nil {
		u.Email = *ch.email
	}
	if ch.otpExempt != nil {
		u.OTPExempt = *ch.otpExempt
	}
	if ch.phone != nil {
		u.Phone = *ch.phone
	}
	if ch.preferred != nil {
		u.Preferred = strings.ToUpper(*ch.preferred)
	}
	if ch.setRoles {
		u.Roles = storage.Strings(ch.roles)
	}
	for _, r := range ch.addRoles {
		if !u.Roles.Contains(r) {
			u.Roles = append(u.Roles, r)
		}
	}
	u.Roles = slices.DeleteFunc(u.Roles, func(r string) bool { return slices.Contains(ch.rmRoles, r) })
	if ch.replaceAttrs || u.Attributes == nil {
		u.Attributes = storage.Attributes{}
	}
	for k, v := range ch.attrs {
		u.Attributes[k] = v
	}
	for _, k := range ch.rmAttrs {
		delete(u.Attributes, k)
	}
	return nil
}

func (c *cli) userUpdateCommand() *cobra.Command {
	var (
		ch               userChange
		username, email  string
		attrPairs        []string
		attrsJSON        string
		exempt           bool
		phone, preferred string
	)
	cmd := &cobra.Command{
		Use:   "update USERNAME|UID [flags]",
		Short: "Change a user's name, email, roles or attributes (only the flags given)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if f.Changed("username") {
				ch.username = &username
			}
			if f.Changed("email") {
				ch.email = &email
			}
			if f.Changed("otp-exempt") {
				ch.otpExempt = &exempt
			}
			if f.Changed("phone") {
				ch.phone = &phone
			}
			if f.Changed("preferred-method") {
				ch.preferred = &preferred
			}
			ch.setRoles = f.Changed("role")
			ch.replaceAttrs = f.Changed("attributes")
			var err error
			if ch.attrs, err = parseAttributes(attrsJSON, attrPairs); err != nil {
				return err
			}
			return c.withUser(cmd.Context(), args[0], func(env *environment, u *storage.User) error {
				if ch.otpExempt != nil {
					env.log.Warn("second-factor exemption changed by operator", "user", u.ID, "exempt", exempt)
				}
				u, err := env.db.UpdateUser(cmd.Context(), u.ID, ch.apply)
				if err != nil {
					return userError(err, username, "--role/--add-role")
				}
				return c.showUser(cmd.Context(), env, u)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&username, "username", "", "new login name")
	f.StringVar(&email, "email", "", "new email address")
	f.StringArrayVar(&ch.roles, "role", nil, "the roles, replacing all current ones (repeatable)")
	f.StringArrayVar(&ch.addRoles, "add-role", nil, "add a role (repeatable)")
	f.StringArrayVar(&ch.rmRoles, "remove-role", nil, "remove a role (repeatable)")
	f.StringArrayVar(&attrPairs, "attribute", nil, "set an attribute, key=value; a JSON value keeps its type (repeatable)")
	f.StringArrayVar(&ch.rmAttrs, "remove-attribute", nil, "remove an attribute (repeatable)")
	f.StringVar(&attrsJSON, "attributes", "", "all attributes as one JSON object, replacing the current ones")
	f.StringVar(&phone, "phone", "", "phone number for texted codes, e.g. +44 20 7946 0000")
	f.StringVar(&preferred, "preferred-method", "", "the second factor to use first: TOTP, EMAIL or SMS ('' for the default)")
	f.BoolVar(&exempt, "otp-exempt", false, "let this account sign in with the password alone — ONLY for a dedicated "+
		"conformance-test account; every such sign-in is logged")
	c.addJSON(cmd)
	return cmd
}

// showUser prints a user as `user show` does.
func (c *cli) showUser(ctx context.Context, env *environment, u *storage.User) error {
	_, terr := env.db.GetTOTP(ctx, u.ID)
	v := userView{User: u, TOTPEnrolled: terr == nil}
	if c.jsonOut {
		return c.printJSON(v)
	}
	return c.printUser(v)
}

// accountChange is a change after which the user's sessions and tokens
// must not survive: it runs, then everything issued to the user is ended.
func (c *cli) accountChange(use, short, done string, change func(context.Context, *environment, *storage.User) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use + " USERNAME|UID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return c.withUser(ctx, args[0], func(env *environment, u *storage.User) error {
				if err := change(ctx, env, u); err != nil {
					return err
				}
				if err := env.db.EndUserSessions(ctx, u.ID); err != nil {
					return err
				}
				env.log.Info("account changed by operator", "change", use, "user", u.ID)
				if c.jsonOut {
					return c.printJSON(map[string]any{"uid": u.ID, "username": u.Username, "change": use, "sessions_ended": true})
				}
				fmt.Fprintf(c.stdout, "%s: %s; their sessions are ended and their tokens revoked\n", u.Username, done)
				return nil
			})
		},
	}
	c.addJSON(cmd)
	return cmd
}

func (c *cli) userDisableCommand() *cobra.Command {
	return c.accountChange("disable", "Disable a user: they cannot sign in, and their sessions and tokens end", "disabled",
		func(ctx context.Context, env *environment, u *storage.User) error {
			_, err := env.db.UpdateUser(ctx, u.ID, func(u *storage.User) error { u.Disabled = true; return nil })
			return err
		})
}

func (c *cli) userEnableCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "enable USERNAME|UID",
		Short: "Let a disabled user sign in again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withUser(cmd.Context(), args[0], func(env *environment, u *storage.User) error {
				u, err := env.db.UpdateUser(cmd.Context(), u.ID, func(u *storage.User) error { u.Disabled = false; return nil })
				if err != nil {
					return err
				}
				return c.showUser(cmd.Context(), env, u)
			})
		},
	}
	c.addJSON(cmd)
	return cmd
}

func (c *cli) userSetPasswordCommand() *cobra.Command {
	var fromStdin bool
	cmd := c.accountChange("set-password", "Set a user's password (from standard input); their sessions and tokens end",
		"password set", func(ctx context.Context, env *environment, u *storage.User) error {
			if !fromStdin {
				return errors.New("--password-stdin is required: passwords are never read from the command line")
			}
			hash, err := c.readPasswordHash()
			if err != nil {
				return err
			}
			_, err = env.db.UpdateUser(ctx, u.ID, func(u *storage.User) error { u.PasswordHash = hash; return nil })
			return err
		})
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
	return cmd
}

func (c *cli) userResetOTPCommand() *cobra.Command {
	return c.accountChange("reset-otp", "Remove a user's authenticator app; they cannot sign in until they enrol again",
		"second factor removed (enrol again with `stile user totp` or `stile user enroll-link`)",
		func(ctx context.Context, env *environment, u *storage.User) error {
			return env.db.DeleteTOTP(ctx, u.ID)
		})
}

func (c *cli) userEnrollLinkCommand() *cobra.Command {
	var ttl time.Duration
	var issuer string
	cmd := &cobra.Command{
		Use:   "enroll-link USERNAME|UID",
		Short: "Make a single-use link with which the user sets up their authenticator app",
		Long: "Make a single-use link with which the user sets up their authenticator app. They open it,\n" +
			"enter their password, see a QR code once, and confirm it with a code. An earlier link stops working.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Checked before anything else, so that the error names the
			// flag and no other failure is blamed on it.
			if ttl <= 0 || ttl > login.MaxEnrollmentLinkTTL {
				return fmt.Errorf("--ttl %s: a link lives more than zero and at most 7 days (168h)", ttl)
			}
			base, err := linkBase(issuer)
			if err != nil {
				return err
			}
			return c.userEnrollLink(cmd.Context(), args[0], base, ttl)
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", login.DefaultEnrollmentLinkTTL, "how long the link works (at most 7 days)")
	issuerFlag(cmd, &issuer)
	c.addJSON(cmd)
	return cmd
}

func (c *cli) userEnrollLink(ctx context.Context, ref, issuer string, ttl time.Duration) error {
	return c.withUser(ctx, ref, func(env *environment, u *storage.User) error {
		// The link asks for the password first, so without one, or for a
		// disabled account, it could only fail in the user's hands.
		if u.PasswordHash == "" {
			return fmt.Errorf("%s has no password to enter on the link: set one first with "+
				"stile user set-password %s --password-stdin", u.Username, u.Username)
		}
		if u.Disabled {
			return fmt.Errorf("%s is disabled: enable them first with stile user enable %s", u.Username, u.Username)
		}
		link, expires, err := login.NewEnrollmentLink(ctx, env.db, issuer, u.ID, ttl, time.Now())
		if err != nil {
			return fmt.Errorf("enrolment link for %s: %w", u.Username, err)
		}
		env.log.Info("enrolment link issued by operator", "user", u.ID, "expires", expires)
		if c.jsonOut {
			return c.printJSON(map[string]any{"uid": u.ID, "username": u.Username, "url": link, "expires_at": expires})
		}
		fmt.Fprintf(c.stdout, "Give %s this link (it works once, until %s):\n\n  %s\n\n", u.Username,
			expires.Format(time.RFC3339), link)
		fmt.Fprintln(c.stdout, "They open it, enter their password, scan the QR code it shows them once, and confirm with a code.")
		return nil
	})
}

// linkBase checks that the issuer is an absolute http(s) URL, since the
// link is built on it and a user cannot open a relative one.
func linkBase(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("--issuer %q: give the URL the server runs at, e.g. https://id.example.com", issuer)
	}
	return strings.TrimSuffix(issuer, "/"), nil
}

// issuerFlag gives a command the --issuer flag (env STILE_ISSUER), for
// commands that print URLs or labels of the server.
func issuerFlag(cmd *cobra.Command, p *string) {
	envFlag(cmd.Flags(), p, "issuer", "http://localhost:8080", "STILE_ISSUER", "the issuer URL the server runs at")
}

func (c *cli) userRecoveryCodesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recovery-codes USERNAME|UID",
		Short: "Give a user ten new recovery codes (shown once; the old ones stop working)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withUser(cmd.Context(), args[0], func(env *environment, u *storage.User) error {
				codes, err := login.NewRecoveryCodes(cmd.Context(), env.db, codeKeys(env.master).Recovery, u.ID)
				if err != nil {
					return err
				}
				env.log.Info("recovery codes regenerated by operator", "user", u.ID)
				if c.jsonOut {
					return c.printJSON(map[string]any{"uid": u.ID, "username": u.Username, "codes": codes})
				}
				fmt.Fprintf(c.stdout, "New recovery codes for %s (each works once; hand them over safely):\n\n", u.Username)
				for _, code := range codes {
					fmt.Fprintln(c.stdout, "  "+code)
				}
				return nil
			})
		},
	}
	c.addJSON(cmd)
	return cmd
}
