package account_test

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "github.com/lib/pq"  // the raw connection that installs the refusing trigger
	_ "modernc.org/sqlite" // likewise

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// refuseTOTPFor makes the database refuse, by a trigger, the TOTP
// enrolment of the user named name: the batch holding that user fails in
// its second statement, after its users were inserted.
func refuseTOTPFor(t *testing.T, dialect, url, name string) {
	t.Helper()
	driver, dsn, stmts := "sqlite", strings.TrimPrefix(url, "sqlite:"), []string{
		`CREATE TRIGGER refuse BEFORE INSERT ON totp_enrolments
		 WHEN NEW.user_id IN (SELECT id FROM users WHERE username = '` + name + `')
		 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`}
	if dialect == "postgres" {
		driver, dsn, stmts = "postgres", url, []string{
			`CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN
			   IF EXISTS (SELECT 1 FROM users WHERE id = NEW.user_id AND username = '` + name + `') THEN
			     RAISE EXCEPTION 'refused by the test'; END IF;
			   RETURN NEW; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER refuse BEFORE INSERT ON totp_enrolments FOR EACH ROW EXECUTE FUNCTION refuse()`}
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, s := range stmts {
		if _, err := raw.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
}

// TestImportBatchAtomic: a batch the database refuses fails as a whole —
// none of its accounts is stored, the innocent one beside the refused one
// included, and each of its lines is reported — while the batches before
// and after it are imported; Progress hears each batch; the trail has one
// user.imported event per batch, the refused one as a failure.
func TestImportBatchAtomic(t *testing.T) {
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			url := d.URL(t)
			db := storagetest.Open(t, url)
			refuseTOTPFor(t, d.Name, url, "bad")
			svc := account.New(account.Config{DB: db, Sealer: sealer{}})
			var lines []string
			for _, name := range []string{"a1", "a2", "innocent", "bad", "c1", "c2"} {
				lines = append(lines, fmt.Sprintf(`{"username":%q,"password_hash":"$2y$04$abcdefghijklmnopqrstuu5pD4nD5Y3wGB1fGZ0k5pE8bR6Mz0dCu","totp_secret":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}`, name))
			}
			var progress []int
			rep, err := svc.Import(ctx, operator, strings.NewReader(strings.Join(lines, "\n")),
				account.ImportOptions{BatchSize: 2, Progress: func(n int) { progress = append(progress, n) }})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Imported != 4 || len(rep.Skipped) != 0 || len(rep.Failed) != 2 || rep.Failed[0].Line != 3 || rep.Failed[1].Line != 4 {
				t.Fatalf("report %+v, want 4 imported and lines 3 and 4 failed", rep)
			}
			if strings.Contains(rep.Failed[0].Reason, "refused by the test") {
				t.Errorf("the database's detail reached the report: %s", rep.Failed[0].Reason)
			}
			for name, want := range map[string]bool{"a1": true, "a2": true, "innocent": false, "bad": false, "c1": true, "c2": true} {
				u, err := db.GetUserByUsername(ctx, name)
				if got := err == nil; got != want {
					t.Errorf("%s stored: %v, want %v", name, got, want)
				}
				if want {
					if _, err := db.GetTOTP(ctx, u.ID); err != nil {
						t.Errorf("%s: no TOTP: %v", name, err)
					}
				}
			}
			if fmt.Sprint(progress) != "[2 4 6]" {
				t.Errorf("progress %v, want [2 4 6]", progress)
			}
			events, err := db.ListEvents(ctx, storage.EventFilter{Type: "user.imported"})
			if err != nil || len(events) != 3 {
				t.Fatalf("%d user.imported events (%v), want 3", len(events), err)
			}
			failures := 0
			for _, e := range events {
				if e.Outcome == storage.Failure {
					failures++
				}
				if e.Actor != operator.Operator {
					t.Errorf("event actor %q", e.Actor)
				}
			}
			if failures != 1 {
				t.Errorf("%d failed events, want 1", failures)
			}
		})
	}
}
