package account_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/storage/storagetest"
)

// TestImportConcurrently: the same file imported by several callers at
// once (two operators, or the CLI beside the API) stores each account
// once, with one TOTP each; every line is either imported by exactly one
// caller or skipped by the others, never failed or doubled.
func TestImportConcurrently(t *testing.T) {
	const callers, accounts = 4, 60
	var lines []string
	for i := range accounts {
		lines = append(lines, fmt.Sprintf(`{"username":"u%02d","email":"u%02d@example.com","password_hash":"$2y$04$abcdefghijklmnopqrstuu5pD4nD5Y3wGB1fGZ0k5pE8bR6Mz0dCu","totp_secret":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}`, i, i))
	}
	file := strings.Join(lines, "\n") + "\n"
	for _, d := range storagetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storagetest.Open(t, d.URL(t))
			svc := account.New(account.Config{DB: db, Sealer: sealer{}})
			reports := make([]*account.ImportReport, callers)
			errs := make([]error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					reports[i], errs[i] = svc.Import(ctx, operator, strings.NewReader(file), account.ImportOptions{BatchSize: 7})
				})
			}
			wg.Wait()
			imported, skipped := 0, 0
			for i, r := range reports {
				if errs[i] != nil {
					t.Fatalf("caller %d: %v", i, errs[i])
				}
				if len(r.Failed) != 0 {
					t.Errorf("caller %d failed lines: %+v", i, r.Failed)
				}
				imported += r.Imported
				skipped += len(r.Skipped)
			}
			if imported != accounts || skipped != accounts*(callers-1) {
				t.Errorf("%d imported, %d skipped; want %d and %d", imported, skipped, accounts, accounts*(callers-1))
			}
			p, err := svc.Search(ctx, account.Filter{Limit: account.MaxPageSize})
			if err != nil || len(p.Users) != accounts {
				t.Fatalf("%d users stored (%v), want %d", len(p.Users), err, accounts)
			}
			for _, u := range p.Users {
				if _, err := db.GetTOTP(ctx, u.ID); err != nil {
					t.Errorf("%s has no TOTP: %v", u.Username, err)
				}
			}
		})
	}
}
