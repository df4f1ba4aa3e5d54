package keys

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/stile-id/stile/storage"
)

// Master is the installation's master key. Nothing is encrypted or MACed
// with it directly: every purpose gets its own sub-key through HKDF.
type Master struct {
	key []byte
}

const masterSize = 32

// checkName is where the database keeps the master key's check value.
const checkName = "master_key_check"

// ErrNoMasterFile means the master key file does not exist.
var ErrNoMasterFile = errors.New("master key file does not exist")

// LoadMaster reads the master key from path: 32 random bytes, base64
// encoded. The file must not be readable by group or others.
func LoadMaster(path string) (*Master, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoMasterFile, path)
	}
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s has mode %04o: others can read it; run: chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != masterSize {
		return nil, fmt.Errorf("master key file %s must hold %d random bytes in base64 (openssl rand -base64 32)", path, masterSize)
	}
	return &Master{key: key}, nil
}

// GenerateMaster creates a new master key and writes it to path with mode
// 0600. It never overwrites an existing file.
func GenerateMaster(path string) (*Master, error) {
	key := make([]byte, masterSize)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create master key file: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write master key file: %w", err)
	}
	return &Master{key: key}, nil
}

// NewMaster wraps raw key bytes; tests use it.
func NewMaster(key []byte) (*Master, error) {
	if len(key) != masterSize {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", masterSize, len(key))
	}
	return &Master{key: bytes.Clone(key)}, nil
}

// Derive returns the 32-byte sub-key for one purpose (HKDF-SHA256 with the
// purpose as info). Different purposes give independent keys.
func (m *Master) Derive(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, m.key, nil, "stile/"+purpose, 32)
	if err != nil {
		panic(fmt.Sprintf("hkdf: %v", err)) // cannot happen for a 32-byte output
	}
	return k
}

// checkValue identifies the key without revealing it.
func (m *Master) checkValue() []byte {
	mac := hmac.New(sha256.New, m.Derive("key-check"))
	mac.Write([]byte("stile master key check v1"))
	return mac.Sum(nil)
}

// MetaStore is where the check value lives.
type MetaStore interface {
	GetMeta(ctx context.Context, name string) ([]byte, error)
	InsertMeta(ctx context.Context, name string, value []byte) error
}

// ErrWrongMaster means the key does not match the one the database was set
// up with.
var ErrWrongMaster = errors.New("the master key does not match the one this database was set up with")

// Check compares the key with the database's check value, recording it if
// the database has none yet. A wrong key is refused, never replaced: data
// sealed with the right one would be lost.
func (m *Master) Check(ctx context.Context, db MetaStore) error {
	stored, err := db.GetMeta(ctx, checkName)
	if errors.Is(err, storage.ErrNotFound) {
		if err := db.InsertMeta(ctx, checkName, m.checkValue()); err == nil {
			return nil
		}
		// Another instance recorded one first: compare with it.
		if stored, err = db.GetMeta(ctx, checkName); err != nil {
			return fmt.Errorf("master key check: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("master key check: %w", err)
	}
	if !hmac.Equal(stored, m.checkValue()) {
		return ErrWrongMaster
	}
	return nil
}

// HasCheck reports whether the database was already set up with a master
// key, so a missing key file can be refused instead of regenerated.
func HasCheck(ctx context.Context, db MetaStore) (bool, error) {
	_, err := db.GetMeta(ctx, checkName)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("master key check: %w", err)
	}
}
