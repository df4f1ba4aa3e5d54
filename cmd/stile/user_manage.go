package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stile-id/stile/account"
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
	var (
		f        account.Filter
		disabled bool
	)
	cmd := &cobra.Command{
		Use:   "list [filters]",
		Short: "List users, all or those the filters select",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("disabled") {
				f.Disabled = &disabled
			}
			return c.withEnv(cmd.Context(), func(env *environment) error {
				views, err := listUsers(cmd.Context(), env.accounts(""), f)
				if err != nil {
					return userError(err, "--role")
				}
				if err != nil {
					return err
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
	fl := cmd.Flags()
	fl.StringVar(&f.UsernamePrefix, "username-prefix", "", "only usernames starting so (ignoring letter case)")
	fl.StringVar(&f.EmailPrefix, "email-prefix", "", "only email addresses starting so (ignoring letter case)")
	fl.StringVar(&f.Role, "role", "", "only users with this role")
	fl.StringVar(&f.Attribute, "attribute", "", "only users whose attribute key has this value: key=value")
	fl.BoolVar(&disabled, "disabled", false, "only disabled users (--disabled=false: only enabled ones)")
	c.addJSON(cmd)
	return cmd
}

// listUsers walks every page of the users f selects, with whether each
// has an authenticator app.
func listUsers(ctx context.Context, accounts *account.Service, f account.Filter) ([]userView, error) {
	views := []userView{}
	for f.Limit = account.MaxPageSize; ; {
		p, err := accounts.Search(ctx, f)
		if err != nil {
			return nil, err
		}
		for i := range p.Users {
			fs, err := accounts.Factors(ctx, p.Users[i].ID)
			if err != nil {
				return nil, err
			}
			views = append(views, userView{User: &p.Users[i], TOTPEnrolled: fs.TOTP})
		}
		if f.Cursor = p.Next; f.Cursor == "" {
			return views, nil
		}
	}
}

func (c *cli) userUpdateCommand() *cobra.Command {
	var (
		ch               account.Change
		roles            []string
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
			for name, p := range map[string]**string{"username": &ch.Username, "email": &ch.Email, "phone": &ch.Phone,
				"preferred-method": &ch.Preferred} {
				if f.Changed(name) {
					v, _ := f.GetString(name)
					*p = &v
				}
			}
			if f.Changed("otp-exempt") {
				ch.OTPExempt = &exempt
			}
			if f.Changed("role") {
				ch.Roles = &roles
			}
			attrs, err := parseAttributes(attrsJSON, attrPairs)
			if err != nil {
				return err
			}
			if f.Changed("attributes") {
				ch.Attributes = &attrs
			} else if len(attrs) > 0 {
				patch, _ := json.Marshal(attrs)
				ch.AttributesPatch = patch
			}
			return c.withUser(cmd.Context(), args[0], func(env *environment, u *storage.User) error {
				accounts := env.accounts("")
				u, err := accounts.Update(cmd.Context(), operator(), u.ID, ch)
				if err != nil {
					return userError(err, "--role/--add-role")
				}
				return c.showUser(cmd.Context(), accounts, u)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&username, "username", "", "new login name")
	f.StringVar(&email, "email", "", "new email address")
	f.StringArrayVar(&roles, "role", nil, "the roles, replacing all current ones (repeatable)")
	f.StringArrayVar(&ch.AddRoles, "add-role", nil, "add a role (repeatable)")
	f.StringArrayVar(&ch.RemoveRoles, "remove-role", nil, "remove a role (repeatable)")
	f.StringArrayVar(&attrPairs, "attribute", nil, "set an attribute, key=value; a JSON value keeps its type (repeatable)")
	f.StringArrayVar(&ch.RemoveAttributes, "remove-attribute", nil, "remove an attribute (repeatable)")
	f.StringVar(&attrsJSON, "attributes", "", "all attributes as one JSON object, replacing the current ones")
	f.StringVar(&phone, "phone", "", "phone number for texted codes, e.g. +44 20 7946 0000")
	f.StringVar(&preferred, "preferred-method", "", "the second factor to use first: TOTP, EMAIL or SMS ('' for the default)")
	f.BoolVar(&exempt, "otp-exempt", false, "let this account sign in with the password alone — ONLY for a dedicated "+
		"conformance-test account; every such sign-in is logged")
	c.addJSON(cmd)
	return cmd
}

// showUser prints a user as `user show` does.
func (c *cli) showUser(ctx context.Context, accounts *account.Service, u *storage.User) error {
	fs, err := accounts.Factors(ctx, u.ID)
	if err != nil {
		return err
	}
	v := userView{User: u, TOTPEnrolled: fs.TOTP}
	if c.jsonOut {
		return c.printJSON(v)
	}
	return c.printUser(v)
}

// accountChange is a change after which the user's sessions and tokens
// do not survive (the service ends them).
func (c *cli) accountChange(use, short, done string, change func(context.Context, *account.Service, *storage.User) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use + " USERNAME|UID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return c.withUser(ctx, args[0], func(env *environment, u *storage.User) error {
				if err := change(ctx, env.accounts(""), u); err != nil {
					return userError(err, "")
				}
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
		func(ctx context.Context, a *account.Service, u *storage.User) error {
			_, err := a.Disable(ctx, operator(), u.ID)
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
				accounts := env.accounts("")
				u, err := accounts.Enable(cmd.Context(), operator(), u.ID)
				if err != nil {
					return err
				}
				return c.showUser(cmd.Context(), accounts, u)
			})
		},
	}
	c.addJSON(cmd)
	return cmd
}

func (c *cli) userSetPasswordCommand() *cobra.Command {
	var fromStdin bool
	cmd := c.accountChange("set-password", "Set a user's password (from standard input); their sessions and tokens end",
		"password set", func(ctx context.Context, a *account.Service, u *storage.User) error {
			if !fromStdin {
				return errors.New("--password-stdin is required: passwords are never read from the command line")
			}
			pw, err := c.readPassword()
			if err != nil {
				return err
			}
			return a.SetPassword(ctx, operator(), u.ID, pw)
		})
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
	return cmd
}

func (c *cli) userResetOTPCommand() *cobra.Command {
	return c.accountChange("reset-otp", "Remove a user's authenticator app; they cannot sign in until they enrol again",
		"second factor removed (enrol again with `stile user totp` or `stile user enroll-link`)",
		func(ctx context.Context, a *account.Service, u *storage.User) error {
			return a.ResetFactor(ctx, operator(), u.ID, account.FactorTOTP)
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
			if ttl <= 0 || ttl > account.MaxEnrollmentLinkTTL {
				return fmt.Errorf("--ttl %s: a link lives more than zero and at most 7 days (168h)", ttl)
			}
			base, err := linkBase(issuer)
			if err != nil {
				return err
			}
			return c.userEnrollLink(cmd.Context(), args[0], base, ttl)
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", account.DefaultEnrollmentLinkTTL, "how long the link works (at most 7 days)")
	issuerFlag(cmd, &issuer)
	c.addJSON(cmd)
	return cmd
}

func (c *cli) userEnrollLink(ctx context.Context, ref, issuer string, ttl time.Duration) error {
	return c.withUser(ctx, ref, func(env *environment, u *storage.User) error {
		if u.Disabled {
			return fmt.Errorf("%s is disabled: enable them first with stile user enable %s", u.Username, u.Username)
		}
		link, expires, err := env.accounts(issuer).EnrollLink(ctx, operator(), u.ID, ttl)
		if err != nil {
			return fmt.Errorf("enrolment link for %s: %w", u.Username, err)
		}
		if c.jsonOut {
			return c.printJSON(map[string]any{"uid": u.ID, "username": u.Username, "url": link, "expires_at": expires})
		}
		fmt.Fprintf(c.stdout, "Give %s this link (it works once, until %s):\n\n  %s\n\n", u.Username,
			expires.Format(time.RFC3339), link)
		if u.PasswordHash == "" {
			fmt.Fprintln(c.stdout, "They open it, choose a password, scan the QR code it shows them once, and confirm with a code.")
		} else {
			fmt.Fprintln(c.stdout, "They open it, enter their password, scan the QR code it shows them once, and confirm with a code.")
		}
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
				codes, err := env.accounts("").RecoveryCodes(cmd.Context(), operator(), u.ID)
				if err != nil {
					return err
				}
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

func (c *cli) userDeleteCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete USERNAME|UID --yes",
		Short: "Delete a user with their sessions, tokens and factors (the audit trail keeps its events)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return fmt.Errorf("deleting %s cannot be undone: add --yes (or disable them: stile user disable %s)", args[0], args[0])
			}
			return c.withUser(cmd.Context(), args[0], func(env *environment, u *storage.User) error {
				if err := env.accounts("").Delete(cmd.Context(), operator(), u.ID); err != nil {
					return err
				}
				if c.jsonOut {
					return c.printJSON(map[string]any{"uid": u.ID, "username": u.Username, "deleted": true})
				}
				fmt.Fprintf(c.stdout, "deleted user %s (uid %s) with their sessions, tokens and factors\n", u.Username, u.ID)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "really delete")
	c.addJSON(cmd)
	return cmd
}

func (c *cli) userSessionsCommand() *cobra.Command {
	var end bool
	cmd := &cobra.Command{
		Use:   "sessions USERNAME|UID [--end]",
		Short: "List a user's sessions and the clients holding refresh tokens; --end signs them out everywhere",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withUser(cmd.Context(), args[0], func(env *environment, u *storage.User) error {
				accounts := env.accounts("")
				if end {
					if err := accounts.EndSessions(cmd.Context(), operator(), u.ID); err != nil {
						return err
					}
				}
				s, err := accounts.Sessions(cmd.Context(), u.ID)
				if err != nil {
					return err
				}
				return c.printSessions(s)
			})
		},
	}
	cmd.Flags().BoolVar(&end, "end", false, "end every session and revoke every token first")
	c.addJSON(cmd)
	return cmd
}

func (c *cli) printSessions(s *account.Sessions) error {
	out := s.View()
	if c.jsonOut {
		return c.printJSON(out)
	}
	rows := [][]string{{"SESSION", "SIGNED IN", "LAST SEEN", "AMR"}}
	for _, x := range out.Sessions {
		rows = append(rows, []string{x.ID, stamp(&x.AuthTime), stamp(&x.LastSeenAt), strings.Join(x.AMR, " ")})
	}
	rows = append(rows, []string{}, []string{"CLIENT", "SCOPES", "SIGNED IN", "EXPIRES"})
	for _, g := range out.Grants {
		rows = append(rows, []string{g.ClientID, strings.Join(g.Scopes, " "), stamp(&g.AuthTime), stamp(&g.ExpiresAt)})
	}
	return c.printRows(rows)
}
