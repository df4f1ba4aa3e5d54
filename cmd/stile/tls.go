package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// certificates is the pair --tls-cert/--tls-key, read at start and again
// on every SIGHUP. The server asks it at each handshake
// (tls.Config.GetCertificate), so a reload changes what new connections
// see and drops none of the open ones; a new pair that does not load is
// refused and the old one keeps serving.
type certificates struct {
	certFile, keyFile string
	log               *slog.Logger
	current           atomic.Pointer[tls.Certificate]
}

// loadCertificates reads the pair; a broken one is an error at start.
func loadCertificates(certFile, keyFile string, log *slog.Logger) (*certificates, error) {
	c := &certificates{certFile: certFile, keyFile: keyFile, log: log}
	cert, err := c.read()
	if err != nil {
		return nil, err
	}
	c.current.Store(cert)
	return c, nil
}

func (c *certificates) read() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", c.certFile, c.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s: %w", c.certFile, err)
	}
	cert.Leaf = leaf
	return &cert, nil
}

// reload re-reads the pair (what SIGHUP does). On an error the old
// certificate stays.
func (c *certificates) reload() error {
	cert, err := c.read()
	if err != nil {
		c.log.Error("TLS certificate not reloaded: still serving the previous one", "err", err,
			"serial", c.current.Load().Leaf.SerialNumber.String())
		return err
	}
	c.current.Store(cert)
	c.log.Info("TLS certificate reloaded", certAttrs(cert.Leaf)...)
	return nil
}

func certAttrs(leaf *x509.Certificate) []any {
	return []any{"subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
}

func (c *certificates) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// config is the server's TLS configuration: TLS 1.2 and later, the
// current certificate at each handshake.
func (c *certificates) config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}
}

// tlsOptions are --tls-cert and --tls-key.
type tlsOptions struct{ cert, key string }

func (o tlsOptions) validate() error {
	if (o.cert == "") != (o.key == "") {
		return errors.New("--tls-cert and --tls-key go together: give both (stile serves https) or neither (a proxy terminates TLS)")
	}
	return nil
}
