package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stile-id/stile/storage/storagetest"
)

// testCert is a self-signed certificate for 127.0.0.1 and its PEM files.
type testCert struct {
	serial          int64
	certPEM, keyPEM []byte
	pool            *x509.CertPool
}

func newTestCert(t *testing.T, serial int64) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "stile test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCert{serial: serial, pool: x509.NewCertPool(),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
	c.pool.AddCert(cert)
	return c
}

func writePair(t *testing.T, certFile, keyFile string, certPEM, keyPEM []byte) {
	t.Helper()
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

// httpsClient trusts pool alone, with TLS versions up to max (0: any).
func httpsClient(pool *x509.CertPool, max uint16) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: max}}}
}

// servedSerial fetches /healthz and returns the serial of the certificate
// the connection was made with, and whether the connection was reused.
func servedSerial(t *testing.T, c *http.Client, url string) (serial int64, reused bool) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/healthz", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s/healthz: %v", url, err)
	}
	defer resp.Body.Close()
	io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("GET %s/healthz: %d, TLS %v", url, resp.StatusCode, resp.TLS != nil)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("https issuer: Strict-Transport-Security %q", got)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), reused
}

// TestTLSReloadOnSIGHUP runs `stile serve --tls-cert --tls-key` as a
// process of its own and sends it real SIGHUPs: a real HTTPS request
// verifies against the first certificate (TLS 1.2 and later only); a
// broken pair is refused and the first certificate keeps serving; a good
// pair replaces it for new connections while an open connection goes on.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first, second := newTestCert(t, 1001), newTestCert(t, 2002)
	writePair(t, certFile, keyFile, first.certPEM, first.keyPEM)

	log := &jsonLog{}
	cmd := exec.Command(os.Args[0], "serve", "--database", "sqlite:"+filepath.Join(dir, "stile.db"), "--listen", "127.0.0.1:0",
		"--issuer", "https://localhost:8443", "--tls-cert", certFile, "--tls-key", keyFile, "--log-format", "json")
	cmd.Env = append(os.Environ(), cliProcessEnv+"=1")
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("serve log:\n%s", log.String())
		}
	})
	log.waitMsg(t, "stile is listening")
	addr, _ := log.msg("stile is starting")[0]["address"].(string)
	url := "https://" + addr

	open := httpsClient(first.pool, 0) // keeps its connection across the reloads
	if serial, _ := servedSerial(t, open, url); serial != first.serial {
		t.Fatalf("serial %d, want %d", serial, first.serial)
	}
	if _, err := httpsClient(first.pool, tls.VersionTLS11).Get(url + "/healthz"); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	if _, err := httpsClient(second.pool, 0).Get(url + "/healthz"); err == nil {
		t.Error("the first certificate verified against the second one's pool")
	}

	// A broken pair: the second certificate with the first one's key.
	writePair(t, certFile, keyFile, second.certPEM, first.keyPEM)
	cmd.Process.Signal(syscall.SIGHUP)
	log.waitMsg(t, "TLS certificate not reloaded")
	if serial, _ := servedSerial(t, httpsClient(first.pool, 0), url); serial != first.serial {
		t.Fatalf("after a broken reload: serial %d, want the first certificate's %d", serial, first.serial)
	}

	// A good pair.
	writePair(t, certFile, keyFile, second.certPEM, second.keyPEM)
	cmd.Process.Signal(syscall.SIGHUP)
	log.waitMsg(t, "TLS certificate reloaded")
	if serial, _ := servedSerial(t, httpsClient(second.pool, 0), url); serial != second.serial {
		t.Fatalf("after the reload: serial %d, want %d", serial, second.serial)
	}
	if _, err := httpsClient(first.pool, 0).Get(url + "/healthz"); err == nil {
		t.Error("a new connection still got the first certificate")
	}
	serial, reused := servedSerial(t, open, url)
	if !reused || serial != first.serial {
		t.Errorf("the connection open since before the reloads: reused %v, serial %d; want it kept", reused, serial)
	}
	if cmd.ProcessState != nil {
		t.Fatal("serve exited")
	}
	log.checkAllJSON(t)
}

// TestTLSFlags: --tls-cert and --tls-key go together; a pair that does not
// load stops serve at start; the likely misconfigurations are warned of.
func TestTLSFlags(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c := newTestCert(t, 7)
	writePair(t, certFile, keyFile, c.certPEM, c.keyPEM)
	for _, args := range [][]string{{"--tls-cert", certFile}, {"--tls-key", keyFile}} {
		err := run(context.Background(), append([]string{"serve"}, args...), func(string) string { return "" },
			strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "go together") {
			t.Errorf("serve %v: %v, want both or neither", args, err)
		}
	}
	err := run(context.Background(), []string{"serve", "--listen", "127.0.0.1:0", "--tls-cert", keyFile, "--tls-key", certFile},
		func(string) string { return "" }, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Errorf("a broken pair at start: %v, want a refusal", err)
	}

	const plainHTTPS = "the issuer is https but stile serves plain http"
	const tlsHTTP = "--tls-cert is set but the issuer is http"
	for _, c := range []struct {
		args []string
		warn string
	}{
		{[]string{"--issuer", "https://id.example.com"}, plainHTTPS},
		{[]string{"--issuer", "https://id.example.com", "--trusted-proxies", "127.0.0.1"}, ""},
		{[]string{"--issuer", "https://id.example.com", "--tls-cert", certFile, "--tls-key", keyFile}, ""},
		{[]string{"--issuer", "http://localhost:8080", "--tls-cert", certFile, "--tls-key", keyFile}, tlsHTTP},
		{[]string{"--issuer", "http://localhost:8080"}, ""},
	} {
		s := serveJSON(t, append(c.args, "--database", storagetest.SQLite(t))...)
		s.ready(t)
		for _, w := range []string{plainHTTPS, tlsHTTP} {
			if got := len(s.log.msg(w)) > 0; got != (w == c.warn) {
				t.Errorf("serve %v: warned %q: %v", c.args, w, got)
			}
		}
		s.stop()
	}
}
