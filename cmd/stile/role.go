package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stile-id/stile/storage"
)

// Enrolment policies per role: for users who hold the role they take the
// place of the client's policy (the strictest wins when several of a
// user's roles have one).
func (c *cli) roleCommand() *cobra.Command {
	cmd := groupCommand("role", "Set what users of a role without a second factor get after the password")
	cmd.AddCommand(c.roleListCommand(), c.roleSetPolicyCommand(), c.roleClearPolicyCommand())
	return cmd
}

func (c *cli) roleListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the roles that have an enrolment policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withEnv(cmd.Context(), func(env *environment) error {
				policies, err := env.db.RolePolicies(cmd.Context())
				if err != nil {
					return err
				}
				if c.jsonOut {
					return c.printJSON(policies)
				}
				rows := [][]string{{"ROLE", "ENROLLMENT POLICY", "UPDATED"}}
				for _, p := range policies {
					rows = append(rows, []string{p.Role, p.EnrollmentPolicy, stamp(&p.UpdatedAt)})
				}
				return c.printRows(rows)
			})
		},
	}
	c.addJSON(cmd)
	return cmd
}

func (c *cli) roleSetPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set-policy ROLE POLICY",
		Short: "Give users of ROLE this enrolment policy in place of the client's: " + strings.Join(storage.EnrollmentPolicies, ", "),
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withEnv(cmd.Context(), func(env *environment) error {
				err := env.db.SetRolePolicy(cmd.Context(), args[0], args[1])
				if err != nil {
					return flagError(err, [][2]string{{"role", "ROLE"}, {"enrollment_policy", "POLICY"}})
				}
				env.audit(cmd.Context(), "role.policy_set", storage.Attributes{"role": args[0], "policy": args[1]})
				if args[1] == storage.EnrollTOTPAfterPassword {
					fmt.Fprintln(c.stderr, "warning: users of this role will be shown a new TOTP secret after the password alone")
				}
				fmt.Fprintf(c.stdout, "users with role %q and no second factor get %s after the password\n", args[0], args[1])
				return nil
			})
		},
	}
	return cmd
}

func (c *cli) roleClearPolicyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "clear-policy ROLE",
		Short: "Remove ROLE's enrolment policy: its users get the client's again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withEnv(cmd.Context(), func(env *environment) error {
				err := env.db.DeleteRolePolicy(cmd.Context(), args[0])
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("role %q has no enrolment policy", args[0])
				}
				if err != nil {
					return err
				}
				env.audit(cmd.Context(), "role.policy_cleared", storage.Attributes{"role": args[0]})
				fmt.Fprintf(c.stdout, "users with role %q get the client's enrolment policy again\n", args[0])
				return nil
			})
		},
	}
}
