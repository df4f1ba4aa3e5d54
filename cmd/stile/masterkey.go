package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
)

// resealBatchDone, when set (by tests only), runs after every batch that
// rotate-master re-seals, so a test can sign in between two batches.
var resealBatchDone func()

func (c *cli) keysRotateMasterCommand() *cobra.Command {
	var newFile string
	var generate, finish bool
	var batch int
	cmd := &cobra.Command{
		Use:   "rotate-master --new-secret-file PATH [--generate] [--batch-size 100] | --finish",
		Short: "Re-seal every secret at rest under a new master key while instances keep serving",
		Long: "Start a master key change from --secret-file (the current key) to --new-secret-file (created, mode\n" +
			"0600, with --generate; never overwritten), and re-seal every sealed secret (TOTP secrets, signing\n" +
			"keys, pending enrolments and sign-ups) with the new key, --batch-size rows per transaction. Until\n" +
			"--finish, instances started with either file serve everyone. Running it again resumes.\n" +
			"Then give every instance the new file, restart them one by one, and run it with --finish: the old\n" +
			"file opens nothing any more. MAC and cookie keys do not change (see docs/master-key.md).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case finish && (newFile != "" || generate):
				return errors.New("--finish: takes neither --new-secret-file nor --generate")
			case !finish && newFile == "":
				return errors.New("--new-secret-file: required (the new master key file; --generate creates it)")
			case batch < 1:
				return fmt.Errorf("--batch-size %d: must be at least 1", batch)
			}
			return c.withEnv(cmd.Context(), func(env *environment) error {
				if finish {
					return c.finishRotation(cmd.Context(), env)
				}
				return c.rotateMaster(cmd.Context(), env, newFile, generate, batch)
			})
		},
	}
	cmd.Flags().StringVar(&newFile, "new-secret-file", "", "the new master key file")
	cmd.Flags().BoolVar(&generate, "generate", false, "create the new master key file (mode 0600; never overwrites)")
	cmd.Flags().BoolVar(&finish, "finish", false, "end the change once every instance runs with the new file")
	cmd.Flags().IntVar(&batch, "batch-size", 100, "rows re-sealed per transaction")
	return cmd
}

func (c *cli) rotateMaster(ctx context.Context, env *environment, newFile string, generate bool, batch int) error {
	var next *keys.Master
	var err error
	if generate {
		next, err = keys.GenerateMaster(newFile)
		if err != nil {
			return fmt.Errorf("--new-secret-file: %w (--generate never overwrites a file: drop --generate to use it)", err)
		}
		fmt.Fprintf(c.stdout, "created the new master key file %s (mode 0600): back it up now, separately from the database\n", newFile)
	} else if next, err = keys.LoadMaster(newFile); err != nil {
		return fmt.Errorf("--new-secret-file: %w", err)
	}
	resumed, err := keys.StartRotation(ctx, env.db, env.master, next)
	if err != nil {
		return err
	}
	change, err := keys.OpenChange(ctx, env.db)
	if err != nil {
		return err
	}
	if resumed {
		fmt.Fprintf(c.stdout, "resuming the master key change %s → %s, started %s\n", change.Old, change.New, stamp(&change.Started))
	} else {
		env.audit(ctx, "master_key.rotation_started", storage.Attributes{"old_key": change.Old, "new_key": change.New})
		fmt.Fprintf(c.stdout, "started the master key change %s → %s: instances with either key file serve everyone\n",
			change.Old, change.New)
	}
	done, err := keys.Reseal(ctx, env.db, env.master, batch, func(r keys.Resealed) {
		if resealBatchDone != nil {
			resealBatchDone()
		}
	})
	for _, r := range done {
		fmt.Fprintf(c.stdout, "  %-34s %d re-sealed, %d already under the new key", r.Kind+":", r.Resealed, r.Already)
		if r.Changed > 0 {
			fmt.Fprintf(c.stdout, ", %d replaced meanwhile", r.Changed)
		}
		if len(r.Unreadable) > 0 {
			fmt.Fprintf(c.stdout, ", %d no key opens: %s", len(r.Unreadable), strings.Join(r.Unreadable, " "))
		}
		fmt.Fprintln(c.stdout)
	}
	if err != nil {
		return fmt.Errorf("re-seal (run the same command again to resume): %w", err)
	}
	_, left, err := keys.NotSealedWith(ctx, env.db, change.New)
	if err != nil {
		return err
	}
	if left > 0 {
		fmt.Fprintf(c.stdout, "%d values are still not under the new key: run this command again before --finish\n", left)
		return nil
	}
	c.printNextSteps(env, newFile)
	return nil
}

func (c *cli) printNextSteps(env *environment, newFile string) {
	db := "--database " + c.database
	w := c.stdout
	fmt.Fprintln(w, "every sealed secret is now under the new key. Next:")
	fmt.Fprintf(w, "  1. back up %s, separately from the database; keep the old key file beside the database\n"+
		"     backups taken before now, which need it\n", newFile)
	fmt.Fprintf(w, "  2. give every instance the new file (--secret-file %s or STILE_SECRET_FILE) and restart\n"+
		"     them one by one; until step 3 both files are accepted\n", newFile)
	fmt.Fprintf(w, "  3. stile keys rotate-master --finish %s --secret-file %s\n", db, newFile)
	if env.db.Dialect() == storage.SQLite && c.secretFile == "" {
		fmt.Fprintf(w, "this database's default key file is %s.key: after step 3, move the new file there\n"+
			"  (mv %s %s.key) or keep passing --secret-file %s\n", env.db.Path(), newFile, env.db.Path(), newFile)
	}
}

func (c *cli) finishRotation(ctx context.Context, env *environment) error {
	change, left, err := keys.FinishRotation(ctx, env.db)
	if errors.Is(err, keys.ErrNoChange) {
		return errors.New("--finish: no master key change is under way (start one with --new-secret-file)")
	}
	if errors.Is(err, keys.ErrOldValuesRemain) {
		for _, l := range left {
			if l.N > 0 {
				fmt.Fprintf(c.stdout, "  %-34s %d not under the new key\n", l.Kind+":", l.N)
			}
		}
		return fmt.Errorf("--finish refused: %w; re-seal them first: stile keys rotate-master --new-secret-file NEW-KEY-FILE "+
			"(the same command as before resumes)", err)
	}
	if err != nil {
		return err
	}
	env.audit(ctx, "master_key.rotation_finished", storage.Attributes{"old_key": change.Old, "new_key": change.New})
	fmt.Fprintf(c.stdout, "finished: master key %s is the current one; key %s opens nothing any more and an instance\n"+
		"started with its file is refused. Keep the old file only beside database backups taken before the change.\n",
		change.New, change.Old)
	if env.db.Dialect() == storage.SQLite && c.secretFile == "" {
		fmt.Fprintf(c.stdout, "this database's default key file is %s.key: if it still holds the old key, replace it with\n"+
			"the new file now (the old one is refused from now on), or pass --secret-file\n", env.db.Path())
	}
	return nil
}
