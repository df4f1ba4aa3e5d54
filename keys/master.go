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

// Master is the installation's master key, as its key file holds it.
// Nothing is encrypted or MACed with it directly. It has two roles:
//
//   - its sealing sub-key (HKDF "seal" of the file's bytes) seals secrets at
//     rest; `stile keys rotate-master` replaces it, and every sealed value
//     names the key that sealed it (seal.go);
//   - every other purpose (MAC peppers, cookie keys, the provider's
//     CryptoKey) derives from the derivation root, which never changes:
//     the digests it MACs cannot be recomputed. Until the first rotation the
//     root is the file's bytes; from then on the database keeps it, sealed
//     under the newest key, and Check loads it (rotate.go).
type Master struct {
	file []byte // the key file's bytes
	root []byte // what Derive derives from; set by Check after a rotation
	ring *ring  // the sealing keys this process knows: its own, and an open change's other one
}

const masterSize = 32

// checkName is where the database keeps the master key's check value.
const checkName = storage.MetaMasterCheck

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
	return newMaster(key), nil
}

func newMaster(key []byte) *Master {
	m := &Master{file: key, root: key}
	m.ring = newRing(m)
	return m
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
	return newMaster(key), nil
}

// NewMaster wraps raw key bytes; tests use it.
func NewMaster(key []byte) (*Master, error) {
	if len(key) != masterSize {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", masterSize, len(key))
	}
	return newMaster(bytes.Clone(key)), nil
}

// Derive returns the 32-byte sub-key for one purpose (HKDF-SHA256 of the
// derivation root with the purpose as info). Different purposes give
// independent keys, and a master key rotation changes none of them.
func (m *Master) Derive(purpose string) []byte { return derive(m.root, purpose) }

func derive(key []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, key, nil, "stile/"+purpose, 32)
	if err != nil {
		panic(fmt.Sprintf("hkdf: %v", err)) // cannot happen for a 32-byte output
	}
	return k
}

// checkValue identifies a key file's key without revealing it.
func checkValue(file []byte) []byte {
	mac := hmac.New(sha256.New, derive(file, "key-check"))
	mac.Write([]byte("stile master key check v1"))
	return mac.Sum(nil)
}

func (m *Master) checkValue() []byte { return checkValue(m.file) }

// keyIDSize is how much of the check value names a key in what it seals.
const keyIDSize = 8

// ID names the key file's key: the first bytes of its check value, which
// every value it seals carries. It is not secret.
func (m *Master) ID() string { return fmt.Sprintf("%x", m.checkValue()[:keyIDSize]) }

// ErrWrongMaster means the key does not match the one the database was set
// up with.
var ErrWrongMaster = errors.New("the master key does not match the one this database was set up with")

// ErrRetiredMaster means the key was replaced by `stile keys rotate-master`
// and that change was finished: it opens nothing any more.
var ErrRetiredMaster = errors.New("this master key was replaced by stile keys rotate-master and opens nothing any more")

// Check compares the key with the database's check value, recording it if
// the database has none yet. A wrong key is refused, never replaced: data
// sealed with the right one would be lost. While a master key change is
// open both its keys are accepted. Check then binds the key to db: it
// learns the other key of an open change, now and whenever it meets a
// value sealed with a key it does not know, and loads the derivation root.
func (m *Master) Check(ctx context.Context, db *storage.DB) error {
	stored, err := db.GetMeta(ctx, checkName)
	if errors.Is(err, storage.ErrNotFound) {
		if err := db.InsertMeta(ctx, checkName, m.checkValue()); err == nil {
			return m.bind(ctx, db)
		}
		// Another instance recorded one first: compare with it.
		if stored, err = db.GetMeta(ctx, checkName); err != nil {
			return fmt.Errorf("master key check: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("master key check: %w", err)
	}
	if !hmac.Equal(stored, m.checkValue()) {
		if err := m.inChange(ctx, db); err != nil {
			return err
		}
	}
	return m.bind(ctx, db)
}

// inChange accepts a key that is not the current one if it is one of an
// open change's two.
func (m *Master) inChange(ctx context.Context, db *storage.DB) error {
	known, err := db.ListMasterKeys(ctx)
	if err != nil {
		return fmt.Errorf("master key check: %w", err)
	}
	for _, k := range known {
		if !hmac.Equal(k.CheckValue, m.checkValue()) {
			continue
		}
		if k.State == storage.MasterRetired {
			return fmt.Errorf("%w (since %s)", ErrRetiredMaster, k.RetiredAt.Time.UTC().Format("2006-01-02 15:04Z"))
		}
		return nil
	}
	return ErrWrongMaster
}

// bind makes db the place the key ring looks for the keys it lacks, and
// loads the derivation root.
func (m *Master) bind(ctx context.Context, db *storage.DB) error {
	m.ring.attach(db)
	if err := m.ring.refresh(ctx); err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	sealed, err := db.GetMeta(ctx, storage.MetaMasterRoot)
	if errors.Is(err, storage.ErrNotFound) {
		return nil // never rotated: the root is this file's key, the first one
	}
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	root, err := NewSealer(m).Open(sealed, storage.MasterRootAAD())
	if err != nil {
		return fmt.Errorf("master key: the derivation root: %w", err)
	}
	m.root = root
	return nil
}

// MetaStore is where the check value lives.
type MetaStore interface {
	GetMeta(ctx context.Context, name string) ([]byte, error)
	InsertMeta(ctx context.Context, name string, value []byte) error
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
