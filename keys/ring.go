package keys

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"sync"

	"github.com/stile-id/stile/storage"
)

// ring is the sealing keys one Master knows: its own, and, while a master
// key change is open, the change's other key, which it unwraps with its
// own from the database's master_keys table. It seals with the change's
// new key once it knows it, so values sealed by a serving instance during
// a rotation need no second pass.
type ring struct {
	own *sealKey

	mu      sync.Mutex
	keys    []*sealKey // own first
	seal    *sealKey
	retired bool        // the sealing key was retired by a finished change
	db      *storage.DB // nil until the Master is checked against it
}

func newRing(m *Master) *ring {
	own := newSealKey(m.file)
	return &ring{own: own, keys: []*sealKey{own}, seal: own}
}

func (r *ring) attach(db *storage.DB) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.db = db
}

// errUnknownKey means a value may be sealed with a key the ring has not
// learnt yet: worth a look in the database.
var errUnknownKey = errors.New("sealed with a master key this process does not know")

func (r *ring) find(id []byte) *sealKey {
	for _, k := range r.keys {
		if bytes.Equal(k.id, id) {
			return k
		}
	}
	return nil
}

func (r *ring) known() []*sealKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*sealKey(nil), r.keys...)
}

func (r *ring) open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, ErrUnseal
	}
	switch sealed[0] {
	case sealV2:
		if len(sealed) < v2Header {
			return nil, ErrUnseal
		}
		r.mu.Lock()
		k := r.find(sealed[1:v2Header])
		r.mu.Unlock()
		if k == nil {
			return nil, errUnknownKey
		}
		return k.openV2(sealed, aad)
	case sealV1:
		for _, k := range r.known() {
			if pt, err := k.openV1(sealed, aad); err == nil {
				return pt, nil
			}
		}
		return nil, errUnknownKey
	}
	return nil, ErrUnseal
}

func (r *ring) sealing() (*sealKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retired {
		return nil, fmt.Errorf("seal: %w: restart this instance with the new key file", ErrRetiredMaster)
	}
	return r.seal, nil
}

// refresh reads master_keys and learns the keys of an open change that it
// can unwrap. It forgets none: a value it opened may still be in memory
// elsewhere, and a forgotten key is only a key the database no longer
// hands out.
func (r *ring) refresh(ctx context.Context) error {
	r.mu.Lock()
	db := r.db
	r.mu.Unlock()
	if db == nil {
		return nil
	}
	rows, err := db.ListMasterKeys(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for range 2 { // a key may be wrapped under one learnt in the first pass
		for _, row := range rows {
			if row.State == storage.MasterRetired || row.Wrapped == nil || r.find(row.ID) != nil ||
				len(row.Wrapped) < v2Header {
				continue
			}
			wrapper := r.find(row.Wrapped[1:v2Header])
			if wrapper == nil {
				continue
			}
			file, err := wrapper.openV2(row.Wrapped, storage.MasterWrapAAD(row.ID))
			if err != nil {
				return fmt.Errorf("unwrap master key %x: %w", row.ID, err)
			}
			if !hmac.Equal(checkValue(file), row.CheckValue) {
				return fmt.Errorf("unwrap master key %x: it does not match its check value", row.ID)
			}
			r.keys = append(r.keys, newSealKey(file))
		}
	}
	for _, row := range rows {
		if k := r.find(row.ID); k != nil && row.State == storage.MasterNew {
			r.seal = k
		}
	}
	r.retired = false
	for _, row := range rows {
		if row.State == storage.MasterRetired && bytes.Equal(row.ID, r.seal.id) {
			r.retired = true
		}
	}
	return nil
}
