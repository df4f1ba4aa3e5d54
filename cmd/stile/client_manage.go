package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stile-id/stile/op"
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
			ctx := cmd.Context()
			return c.withEnv(ctx, func(env *environment) error {
				var secret string
				cl, err := env.db.UpdateClient(ctx, args[0], func(cl *storage.Client) error {
					if err := f.apply(cmd.Flags(), cl, false); err != nil {
						return err
					}
					if cl.Public() {
						cl.SecretHash = nil
						return nil
					}
					if !f.rotateSecret && !f.secretStdin && cl.SecretHash != nil {
						return nil
					}
					var err error
					if secret, err = f.secret(c); err != nil {
						return err
					}
					cl.SecretHash = op.SecretDigest(op.SecretKey(env.master), secret)
					return nil
				})
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client %q", args[0])
				}
				if err != nil {
					return clientError(cl, err)
				}
				return c.printSaved(cl, secret, "updated")
			})
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&f.rotateSecret, "rotate-secret", false, "give a web client a new secret (the old one stops working)")
	c.addJSON(cmd)
	return cmd
}

func (c *cli) clientRemoveCommand() *cobra.Command {
	return &cobra.Command{
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
				env.log.Info("client removed by operator", "client", args[0])
				fmt.Fprintf(c.stdout, "removed client %s; its tokens no longer work\n", args[0])
				return nil
			})
		},
	}
}
