package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stile-id/stile/storage"
)

func (c *cli) clientListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withEnv(cmd.Context(), func(env *environment) error {
				clients, err := env.db.ListClients(cmd.Context())
				if err != nil {
					return err
				}
				if c.jsonOut {
					views := make([]clientView, len(clients))
					for i := range clients {
						views[i] = clientView{Client: &clients[i]}
					}
					return c.printJSON(views)
				}
				rows := [][]string{{"CLIENT_ID", "TYPE", "NAME", "FIRST PARTY", "GRANTS", "REDIRECT URIS"}}
				for _, cl := range clients {
					rows = append(rows, []string{cl.ID, cl.Type, cl.Name, fmt.Sprint(cl.FirstParty),
						strings.Join(cl.GrantTypes, ","), strings.Join(cl.RedirectURIs, " ")})
				}
				return c.printRows(rows)
			})
		},
	}
	c.addJSON(cmd)
	return cmd
}

func (c *cli) clientUpdateCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "update CLIENT_ID [flags]",
		Short: "Change a client (only the flags given); --rotate-secret prints a new secret once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			given, err := f.stdinSecret(c)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			return c.withEnv(ctx, func(env *environment) error {
				var secret, apiKey string
				var flagErr error // the flags' own complaint, shown without the store's wrapping
				cl, err := env.db.UpdateClient(ctx, args[0], func(cl *storage.Client) error {
					if flagErr = f.apply(cmd.Flags(), cl, false); flagErr != nil {
						return flagErr
					}
					if apiKey, flagErr = f.rekeyDirect(env, cl); flagErr != nil {
						return flagErr
					}
					secret, flagErr = f.rekey(env, cl, given)
					return flagErr
				})
				if flagErr != nil {
					return flagErr
				}
				if err != nil {
					return f.storeError(args[0], err)
				}
				if err := ensurePinnedKey(ctx, env, cl); err != nil {
					return err
				}
				env.audit(ctx, "client.updated", storage.Attributes{"client_id": cl.ID, "fields": changedFlags(cmd),
					"secret_rotated": secret != "", "api_key_rotated": apiKey != ""})
				return c.printSaved(cl, secret, apiKey, "updated")
			})
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&f.rotateSecret, "rotate-secret", false, "give a web client a new secret (the old one stops working)")
	cmd.Flags().BoolVar(&f.rotateAPIKey, "rotate-api-key", false, "give the client a new direct-mode apiKey (the old one stops working)")
	c.addJSON(cmd)
	return cmd
}

func (c *cli) clientRemoveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remove CLIENT_ID",
		Short: "Remove a client, with its consents and tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withEnv(cmd.Context(), func(env *environment) error {
				err := env.db.DeleteClient(cmd.Context(), args[0])
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client %q", args[0])
				}
				if err != nil {
					return err
				}
				env.audit(cmd.Context(), "client.removed", storage.Attributes{"client_id": args[0]})
				if c.jsonOut {
					return c.printJSON(map[string]any{"client_id": args[0], "removed": true})
				}
				fmt.Fprintf(c.stdout, "removed client %s with its consents and tokens; its tokens no longer work\n", args[0])
				return nil
			})
		},
	}
	c.addJSON(cmd)
	return cmd
}

// changedFlags names the flags given to a command, for the audit trail
// (names, never values: a flag may carry a secret's source).
func changedFlags(cmd *cobra.Command) []string {
	var names []string
	cmd.Flags().Visit(func(f *pflag.Flag) { names = append(names, f.Name) })
	return names
}
