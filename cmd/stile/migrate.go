package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (c *cli) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date (serve also does this at start)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withEnv(cmd.Context(), func(env *environment) error {
				v, err := env.db.ServerVersion(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "schema is up to date (%s)\n", v)
				return nil
			})
		},
	}
}
