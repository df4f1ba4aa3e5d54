package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/stile-id/stile/account"
)

func (c *cli) userImportCommand() *cobra.Command {
	var (
		o     account.ImportOptions
		every int
	)
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import accounts from JSON Lines (FILE - reads standard input), keeping their password hashes",
		Long: `Import accounts from another system, one JSON object a line:

  {"username":"ada","email":"ada@example.com","phone":"+442079460000","roles":["editor"],
   "attributes":{"plan":"pro"},"password_hash":"$2y$10$…","totp_secret":"JBSWY3DPEHPK3PXP","disabled":false}

Only username is required. password_hash may be bcrypt ($2a$ $2b$ $2y$), WordPress ($wp$2y$, $P$),
Django (pbkdf2_sha256$, argon2$), Drupal 7+ ($S$, U$S$), phpass ($P$, $H$) or argon2id; it is
replaced by stile's argon2id at the user's first sign-in. An account whose username or email exists
is skipped, never changed, so running an import again changes nothing. Every line that cannot be
imported is reported with its number; the exit status is 1 if any was.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if every < 1 {
				return errors.New("--progress-every must be at least 1")
			}
			return c.userImport(cmd.Context(), args[0], o, every)
		},
	}
	cmd.Flags().IntVar(&o.BatchSize, "batch", account.DefaultImportBatch,
		fmt.Sprintf("accounts per transaction (at most %d)", account.MaxImportBatch))
	cmd.Flags().IntVar(&every, "progress-every", 1000, "when standard error is no terminal, print a progress line every this many records")
	c.addJSON(cmd)
	return cmd
}

func (c *cli) userImport(ctx context.Context, path string, o account.ImportOptions, every int) error {
	in, total, err := c.importSource(path)
	if err != nil {
		return err
	}
	defer in.Close()
	return c.withEnv(ctx, func(env *environment) error {
		p := c.importProgress(total, every)
		o.Progress = p.update
		rep, err := env.accounts("").Import(ctx, operator(), in, o)
		p.finish()
		if rep != nil {
			if perr := c.printImport(rep); perr != nil {
				return perr
			}
		}
		if err != nil {
			return fmt.Errorf("import stopped: %w", err)
		}
		if n := len(rep.Failed); n > 0 {
			return fmt.Errorf("%d line(s) could not be imported (listed above); %d imported, %d skipped", n, rep.Imported, len(rep.Skipped))
		}
		return nil
	})
}

// importSource opens FILE, or standard input for "-", and counts its
// records when it can (a file: read once more, cheaply) for the ETA; -1
// when it cannot.
func (c *cli) importSource(path string) (io.ReadCloser, int64, error) {
	if path == "-" {
		return io.NopCloser(c.stdin), -1, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("open the import file: %w", err)
	}
	n, err := countRecords(f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return f, n, nil
}

// countRecords counts the lines with something on them, as the import
// counts its records.
func countRecords(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var n int64
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return -1, nil // the import reports the line; the bar goes without a total
	}
	return n, sc.Err()
}

func (c *cli) printImport(rep *account.ImportReport) error {
	if c.jsonOut {
		return c.printJSON(rep)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(c.stdout, "line %d: skipped %s: %s\n", s.Line, s.Username, s.Reason)
	}
	for _, f := range rep.Failed {
		fmt.Fprintf(c.stdout, "line %d: failed: %s\n", f.Line, f.Reason)
	}
	fmt.Fprintf(c.stdout, "imported %d, skipped %d, failed %d\n", rep.Imported, len(rep.Skipped), len(rep.Failed))
	return nil
}

// importProgress shows how an import goes on standard error: a bar with
// rate and ETA on a terminal, else a plain line every `every` records, so
// a log or a CI job gets a few lines rather than a bar's redraws.
type importProgress struct {
	bar   *progressbar.ProgressBar
	w     io.Writer
	total int64
	every int
	start time.Time
	last  int // records at the last line printed
	done  int
}

func (c *cli) importProgress(total int64, every int) *importProgress {
	p := &importProgress{w: c.stderr, total: total, every: every, start: time.Now()}
	if f, ok := c.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(f),
			progressbar.OptionSetDescription("importing"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("accounts"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	return p
}

func (p *importProgress) update(done int) {
	p.done = done
	if p.bar != nil {
		p.bar.Set(done) //nolint:errcheck // a bar that cannot draw must not stop the import
		return
	}
	if done-p.last >= p.every {
		p.line()
	}
}

func (p *importProgress) finish() {
	if p.bar != nil {
		p.bar.Finish() //nolint:errcheck // as above
		return
	}
	if p.done != p.last {
		p.line()
	}
}

func (p *importProgress) line() {
	p.last = p.done
	rate := float64(p.done) / max(time.Since(p.start).Seconds(), 1e-3)
	if p.total >= 0 {
		fmt.Fprintf(p.w, "imported %d/%d (%.0f/s)\n", p.done, p.total, rate)
		return
	}
	fmt.Fprintf(p.w, "imported %d (%.0f/s)\n", p.done, rate)
}
