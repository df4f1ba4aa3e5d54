// Command stile is an OpenID Connect provider with a two-step login.
//
// This package only reads commands, flags and environment and wires the
// packages together; main calls run so tests can drive the whole program
// in-process.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "stile:", err)
		os.Exit(1)
	}
}

// cli is what every command shares: the process's streams and environment,
// and the flags that say where the data and the master key are.
type cli struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer

	database   string
	secretFile string
	jsonOut    bool
	configFile string
	settings   *settings // the flags' values and sources, once applied
	logFormat  logFormat
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	var guard lineGuard
	var keys map[string]bool
	root := &cobra.Command{
		Use:           "stile",
		Short:         "An OpenID Connect provider with a two-step login",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			c.settings = loadSettings(cmd.Flags(), getenv, &guard, keys)
			if collectsProblems(cmd) {
				return nil // listed with the command's own checks
			}
			return c.settings.err()
		},
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	envFlag(pf, &c.database, "database", "sqlite:stile.db", "STILE_DATABASE", "sqlite:PATH or postgres://… URL")
	envFlag(pf, &c.secretFile, "secret-file", "", "STILE_SECRET_FILE",
		"master key file (mode 0600); with SQLite defaults to the database path + .key and is created on first start")
	c.logFormat.register(pf)
	envFlag(pf, &c.configFile, "config", "", "STILE_CONFIG",
		"a YAML file of settings, keyed by flag name (e.g. issuer: https://id.example.com); flags and STILE_* variables override it")
	root.AddCommand(c.serveCommand(), c.configCommand(), c.migrateCommand(), c.userCommand(), c.clientCommand(), c.roleCommand(), c.keysCommand(),
		c.eventsCommand(), c.versionCommand(), c.healthCommand())
	keys = configKeys(root)
	guard.guard(root)
	return root.ExecuteContext(ctx)
}

// envFlag defines a string flag that falls back to an environment variable.
func envFlag(fs *pflag.FlagSet, p *string, name, def, env, usage string) {
	fs.StringVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, env))
	fs.SetAnnotation(name, "env", []string{env})
}

// applyEnv sets every flag that has an environment fallback, was not given
// on the command line, and whose variable is set (without a config file).
func applyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	return loadSettings(fs, getenv, &lineGuard{}, nil).err()
}

// addJSON gives a command the --json flag.
func (c *cli) addJSON(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&c.jsonOut, "json", false, "print machine-readable JSON")
}
