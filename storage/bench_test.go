package storage_test

import (
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// Benchmarks measure; tests never assert their speed. Run with
// go test ./storage -run '^$' -bench . -benchtime 2000x

// BenchmarkGetClient reads one client by ID, the read every token request
// repeats.
func BenchmarkGetClient(b *testing.B) {
	for _, d := range storagetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			db := storagetest.Open(b, d.URL(b))
			c := &storage.Client{ID: "app", Type: storage.ClientWeb, AuthMethod: storage.AuthSecretBasic, SecretHash: []byte("digest"),
				RedirectURIs: storage.Strings{"https://app.example.com/cb"}, RequirePKCE: true}
			if err := db.CreateClient(ctx, c); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.GetClient(ctx, "app"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRotate is a refresh grant's writes: the presented link rotated
// into its successor, and the access token stored.
func BenchmarkRotate(b *testing.B) {
	for _, d := range storagetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			db := storagetest.Open(b, d.URL(b))
			u := &storage.User{Username: "alice", Email: "alice@example.com", PasswordHash: "h"}
			if err := db.CreateUser(ctx, u); err != nil {
				b.Fatal(err)
			}
			c := &storage.Client{ID: "app", Type: storage.ClientWeb, AuthMethod: storage.AuthSecretBasic, SecretHash: []byte("digest"),
				RedirectURIs: storage.Strings{"https://app.example.com/cb"}, RequirePKCE: true}
			if err := db.CreateClient(ctx, c); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			link := func(i int) *storage.RefreshToken {
				id := fmt.Sprintf("r%d", i)
				return &storage.RefreshToken{ID: id, TokenHash: []byte("hash-" + id), FamilyID: "fam", ClientID: "app", UserID: u.ID,
					Scopes: storage.Strings{"openid", "offline_access"}, AuthTime: now, AMR: storage.Strings{"pwd", "otp"},
					ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(24 * time.Hour)}
			}
			if err := db.CreateRefreshToken(ctx, link(0)); err != nil {
				b.Fatal(err)
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				at := &storage.AccessToken{ID: fmt.Sprintf("a%d", i), ClientID: "app", UserID: u.ID, ExpiresAt: now.Add(time.Hour),
					FamilyID: sql.NullString{String: "fam", Valid: true}, Scopes: storage.Strings{"openid"}}
				if err := benchRotate(db, fmt.Sprintf("r%d", i), link(i+1), at); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// benchRotate is what a refresh grant stores. Before the lean token path
// it took RotateRefreshToken and then CreateAccessToken; the figures in
// the notes compare the two.
func benchRotate(db *storage.DB, id string, next *storage.RefreshToken, at *storage.AccessToken) error {
	ok, err := db.RotateRefreshTokenWithAccess(ctx, id, 2*time.Second, next, at)
	if err != nil || !ok {
		return fmt.Errorf("rotate %s: %v %v", id, ok, err)
	}
	return nil
}

// BenchmarkRotateParallel runs refresh grants' writes from 32 goroutines
// at once, each on its own family, and reports the latency percentiles:
// on SQLite the tail shows whether writers queue or sleep in busy_timeout.
func BenchmarkRotateParallel(b *testing.B) {
	for _, d := range storagetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			db := storagetest.Open(b, d.URL(b))
			c := &storage.Client{ID: "app", Type: storage.ClientWeb, AuthMethod: storage.AuthSecretBasic, SecretHash: []byte("digest"),
				RedirectURIs: storage.Strings{"https://app.example.com/cb"}, RequirePKCE: true}
			if err := db.CreateClient(ctx, c); err != nil {
				b.Fatal(err)
			}
			u := &storage.User{Username: "alice", Email: "alice@example.com", PasswordHash: "h"}
			if err := db.CreateUser(ctx, u); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			var worker atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(16) // 32 goroutines on two cores
			b.RunParallel(func(pb *testing.PB) {
				w := worker.Add(1)
				link := func(i int) *storage.RefreshToken {
					id := fmt.Sprintf("w%d-r%d", w, i)
					return &storage.RefreshToken{ID: id, TokenHash: []byte("hash-" + id), FamilyID: fmt.Sprintf("fam%d", w), ClientID: "app",
						UserID: u.ID, AuthTime: now, ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(24 * time.Hour)}
				}
				if err := db.CreateRefreshToken(ctx, link(0)); err != nil {
					b.Error(err)
					return
				}
				var mine []time.Duration
				for i := 0; pb.Next(); i++ {
					at := &storage.AccessToken{ID: fmt.Sprintf("w%d-a%d", w, i), ClientID: "app", UserID: u.ID, ExpiresAt: now.Add(time.Hour)}
					start := time.Now()
					if err := benchRotate(db, fmt.Sprintf("w%d-r%d", w, i), link(i+1), at); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			if len(lat) > 0 {
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}
