package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/login"
	"github.com/stile-id/stile/storage"
	"github.com/stile-id/stile/storage/storagetest"
)

// BenchmarkPasswordFlood measures issue 9's memory attack with the real
// argon2id: 200 concurrent wrong passwords over real HTTP, from 200
// addresses, on stile's password page. It reports the process's peak RSS
// (sampled every 2 ms, and the kernel's VmHWM) and how far it rose above
// the resting RSS, beside the pool's memory (size × 64 MiB), the most
// hashes that ran at once and how many posts got 503. "derived" is the
// default pool with the soft memory limit serve sets; "no-memlimit" is the
// same pool without it.
//
//	go test ./cmd/stile -run '^$' -bench PasswordFlood -benchtime 1x
func BenchmarkPasswordFlood(b *testing.B) {
	for _, c := range []struct {
		name     string
		memLimit bool
	}{{"derived", true}, {"no-memlimit", false}} {
		b.Run(c.name, func(b *testing.B) {
			if c.memLimit {
				old := debug.SetMemoryLimit(softMemoryLimit(hashPool{}))
				defer debug.SetMemoryLimit(old)
			}
			benchFlood(b, hashPool{})
		})
	}
}

// BenchmarkUnboundedHashFlood is the same flood against a pool of 64,
// about what stile did before it had one. It takes some 4 GiB; its name
// keeps it out of -bench PasswordFlood.
//
//	go test ./cmd/stile -run '^$' -bench UnboundedHashFlood -benchtime 1x
func BenchmarkUnboundedHashFlood(b *testing.B) {
	benchFlood(b, hashPool{Size: 64, Memory: 64 * login.DefaultArgon2id.MemoryBytes()})
}

func benchFlood(b *testing.B, pool hashPool) {
	counter := newGatedHasher(login.DefaultArgon2id) // gate open: it only counts
	target, arID, client := benchServer(b, counter, pool)
	const n = 200
	var peak, hwm, rest, busy, refused float64
	for b.Loop() {
		runtime.GC()
		debug.FreeOSMemory()
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM (Linux ≥ 4.0)
		rest = float64(procStatus(b, "VmRSS"))
		stop := sampleRSS(b, &peak)
		var wg sync.WaitGroup
		var got503, other atomic.Int64
		for i := range n {
			wg.Go(func() {
				form := url.Values{"authRequestID": {arID}, "username": {fmt.Sprintf("ghost%03d", i)}, "password": {"wrong password"}}
				req, _ := http.NewRequest(http.MethodPost, target+"/login", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.%d", i/250, i%250+1))
				resp, err := client.Do(req)
				if err != nil {
					other.Add(1)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusServiceUnavailable:
					got503.Add(1)
				case http.StatusUnauthorized:
				default:
					other.Add(1)
				}
			})
		}
		wg.Wait()
		stop()
		hwm = float64(procStatus(b, "VmHWM"))
		busy, refused = float64(got503.Load()), float64(other.Load())
	}
	size := pool.size()
	b.ReportMetric(peak/(1<<20), "peak-RSS-MiB")
	b.ReportMetric((peak-rest)/(1<<20), "peak-above-rest-MiB")
	b.ReportMetric(hwm/(1<<20), "VmHWM-MiB")
	b.ReportMetric(float64(int64(size)*login.DefaultArgon2id.MemoryBytes())/(1<<20), "pool-MiB")
	b.ReportMetric(float64(size), "pool-size")
	b.ReportMetric(float64(counter.maxInFlight.Load()), "max-hashes")
	b.ReportMetric(busy, "503s")
	b.ReportMetric(refused, "other-answers")
}

// benchServer runs stile on SQLite with hasher in pool behind a trusted
// loopback proxy, and opens one login on its password page. It returns the
// issuer, the login's authRequestID and the browser holding its binding.
func benchServer(b *testing.B, hasher login.Hasher, pool hashPool) (string, string, *http.Client) {
	ctx := context.Background()
	db, master, ln, issuer := benchStore(b, storagetest.SQLite(b))
	a, err := newApp(ctx, appConfig{Issuer: issuer, DB: db, Master: master, Now: time.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Hasher: hasher, HashPool: pool,
		TrustedProxies: loopback})
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: a.handler}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	if err := db.CreateClient(ctx, &storage.Client{ID: "spa", Name: "SPA", Type: storage.ClientSPA, AuthMethod: storage.AuthNone,
		RequirePKCE: true, FirstParty: true, RedirectURIs: storage.Strings{appRedirect}}); err != nil {
		b.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	sum := sha256.Sum256([]byte("a verifier long enough for PKCE, forty-three characters at least"))
	resp, err := client.Get(issuer + "/authorize?" + url.Values{"client_id": {"spa"}, "redirect_uri": {appRedirect},
		"response_type": {"code"}, "scope": {"openid"}, "state": {"s"}, "nonce": {"n"}, "code_challenge_method": {"S256"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}}.Encode())
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="authRequestID" value="([^"]+)"`).FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.Fatalf("authorize: %d, no password form:\n%s", resp.StatusCode, body)
	}
	return issuer, string(m[1]), client
}

// sampleRSS records the highest VmRSS into peak every 2 ms until stopped.
func sampleRSS(b *testing.B, peak *float64) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	*peak = 0
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			*peak = max(*peak, float64(procStatus(b, "VmRSS")))
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// procStatus reads one "kB" field of /proc/self/status, in bytes.
func procStatus(b *testing.B, field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// benchStore opens the database at dbURL with a new master key, and a
// loopback listener for a benchmark's server at issuer.
func benchStore(b *testing.B, dbURL string) (*storage.DB, *keys.Master, net.Listener, string) {
	db := storagetest.Open(b, dbURL)
	raw := make([]byte, 32)
	rand.Read(raw)
	master, err := keys.NewMaster(raw)
	if err != nil {
		b.Fatal(err)
	}
	if err := master.Check(context.Background(), db); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return db, master, ln, "http://" + ln.Addr().String()
}
