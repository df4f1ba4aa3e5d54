package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/op"
	"github.com/stile-id/stile/storage"
)

func (c *cli) keysCommand() *cobra.Command {
	cmd := groupCommand("keys", "Manage the token-signing keys")
	cmd.AddCommand(c.keysListCommand(), c.keysRotateCommand(), c.keysRotateMasterCommand())
	return cmd
}

// keyView is a signing key without its private half.
type keyView struct {
	Kid           string     `json:"kid"`
	Algorithm     string     `json:"alg"`
	State         string     `json:"state"`
	Default       bool       `json:"default"` // signs for clients that pin no algorithm (a next key: once it signs)
	CreatedAt     time.Time  `json:"created_at"`
	ActivateAfter *time.Time `json:"activate_after,omitempty"`
	ActivatedAt   *time.Time `json:"activated_at,omitempty"`
	RetiredAt     *time.Time `json:"retired_at,omitempty"`
	PublishUntil  *time.Time `json:"publish_until,omitempty"`
	// RotationDue is when the automatic rotation publishes an active key's
	// successor, by the period the last server started recorded.
	RotationDue *time.Time `json:"rotation_due,omitempty"`
}

func viewKey(k storage.SigningKey) keyView {
	opt := func(v bool, t time.Time) *time.Time {
		if !v {
			return nil
		}
		return &t
	}
	return keyView{Kid: k.ID, Algorithm: k.Algorithm, State: k.State, Default: k.Default, CreatedAt: k.CreatedAt,
		ActivateAfter: opt(k.ActivateAfter.Valid, k.ActivateAfter.Time), ActivatedAt: opt(k.ActivatedAt.Valid, k.ActivatedAt.Time),
		RetiredAt: opt(k.RetiredAt.Valid, k.RetiredAt.Time), PublishUntil: opt(k.PublishUntil.Valid, k.PublishUntil.Time)}
}

func (c *cli) keysListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys: next (published, not yet signing), active, retired (published until their tokens expire)",
		Long: "List the signing keys: next (published, not yet signing), active, retired (published until their\n" +
			"tokens expire). ROTATION DUE is when the automatic rotation publishes an active key's successor, by\n" +
			"the --key-rotation the last `stile serve` started on this database recorded.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withEnv(cmd.Context(), func(env *environment) error {
				stored, err := env.db.ListSigningKeys(cmd.Context())
				if err != nil {
					return err
				}
				period, at, err := env.db.KeyRotation(cmd.Context())
				known := err == nil
				if err != nil && !errors.Is(err, storage.ErrNotFound) {
					return err
				}
				views := make([]keyView, len(stored))
				for i, k := range stored {
					views[i] = viewKey(k)
					if known && period > 0 && k.State == storage.KeyActive && !keys.Replacing(stored, k) {
						due := keys.RotationDue(k, period)
						views[i].RotationDue = &due
					}
				}
				if c.jsonOut {
					return c.printJSON(views)
				}
				rows := [][]string{{"KID", "ALG", "STATE", "DEFAULT", "CREATED", "SIGNS FROM", "RETIRED", "PUBLISHED UNTIL", "ROTATION DUE"}}
				for _, v := range views {
					rows = append(rows, []string{v.Kid, v.Algorithm, v.State, fmt.Sprint(v.Default), stamp(&v.CreatedAt),
						stamp(v.ActivateAfter), stamp(v.RetiredAt), stamp(v.PublishUntil), stamp(v.RotationDue)})
				}
				if err := c.printRows(rows); err != nil {
					return err
				}
				fmt.Fprintln(c.stdout, rotationNote(known, period, at))
				return nil
			})
		},
	}
	c.addJSON(cmd)
	return cmd
}

// rotationNote says where the due times come from: the CLI does not know
// the servers' flags, only what the last one started recorded.
func rotationNote(known bool, period time.Duration, at time.Time) string {
	switch {
	case !known:
		return "automatic rotation: no server has recorded its --key-rotation here yet (the default is 90d)"
	case period <= 0:
		return fmt.Sprintf("automatic rotation: off (--key-rotation 0, recorded by the last server started, at %s)", stamp(&at))
	}
	return fmt.Sprintf("automatic rotation: every %s (--key-rotation of the last server started, at %s); "+
		"a successor is published when a key is due and signs %s later", days(period), stamp(&at),
		days(keys.RotationOverlap))
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func (c *cli) keysRotateCommand() *cobra.Command {
	var after time.Duration
	var alg string
	var pinned bool
	cmd := &cobra.Command{
		Use:   "rotate [--alg RS256|ES256|EdDSA [--pinned]] [--activate-after 1h]",
		Short: "Publish a new default signing key now; it signs after --activate-after",
		Long: "Publish a new signing key now, of --alg (default: the current default's algorithm); the running\n" +
			"server lets it sign, as the default, after --activate-after, so verifiers that cache the JWKS\n" +
			"learn it first. The key it replaces stays published until every token it signed has expired;\n" +
			"clients that pin another algorithm (id_token_signed_response_alg) keep their own key.\n" +
			"With --pinned, the new key replaces the key of --alg that pinned clients use; the default stays.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if after < 0 {
				return fmt.Errorf("--activate-after %s: must not be negative", after)
			}
			if cmd.Flags().Changed("alg") {
				if _, err := keys.ParseAlgorithm(alg); err != nil {
					return fmt.Errorf("--alg: %w", err)
				}
			}
			if pinned && alg == "" {
				return errors.New("--pinned: name the pinned key's algorithm with --alg")
			}
			return c.withEnv(cmd.Context(), func(env *environment) error {
				lifetime := max(op.DefaultLifetimes.AccessToken, op.DefaultLifetimes.IDToken)
				m := keys.NewManager(env.db, env.sealer, time.Now, lifetime)
				rotate := m.Rotate
				if pinned {
					rotate = m.RotatePinned
				}
				k, err := rotate(cmd.Context(), alg, after)
				if errors.Is(err, keys.ErrNextExists) {
					return fmt.Errorf("%w; wait for it to start signing (stile keys list)", err)
				}
				if err != nil {
					return err
				}
				env.audit(cmd.Context(), "key.rotated", storage.Attributes{"kid": k.ID, "alg": k.Algorithm,
					"pinned": pinned, "signs_from": k.ActivateAfter.Time})
				if c.jsonOut {
					return c.printJSON(viewKey(*k))
				}
				fmt.Fprintf(c.stdout, "published %s key %s in the JWKS; the running server starts signing with it at %s\n",
					k.Algorithm, k.ID, stamp(&k.ActivateAfter.Time))
				fmt.Fprintln(c.stdout, "the key it replaces stays published until every token it signed has expired")
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&after, "activate-after", time.Hour, "how long the new key is published before it signs")
	cmd.Flags().StringVar(&alg, "alg", "", "the new default's algorithm: RS256, ES256 or EdDSA (default: the current default's)")
	cmd.Flags().BoolVar(&pinned, "pinned", false, "rotate the key of --alg that clients pinning it use, not the default")
	c.addJSON(cmd)
	return cmd
}
