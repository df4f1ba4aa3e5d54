package keys

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"time"

	"github.com/stile-id/stile/storage"
)

// Master key rotation, as `stile keys rotate-master` drives it:
//
//  1. StartRotation records the change in one transaction: the old and the
//     new key in master_keys, each wrapped under the other, and the
//     derivation root sealed under the new key. From then on an instance
//     holding either key file learns the other from the database (ring.go)
//     and opens every value; every instance seals with the new key.
//  2. Reseal walks every sealed column in batches, one transaction each,
//     and re-seals what is not yet under the new key. It can run again, or
//     after a crash, and finds only what is left.
//  3. The operator gives every instance the new key file and restarts them
//     one by one; both files are accepted meanwhile.
//  4. FinishRotation refuses while any value is not sealed with the new key;
//     then the new key's check value becomes the current one and both
//     wrapped copies are deleted: the old file opens nothing any more, and
//     an instance started with it is refused (ErrRetiredMaster).
//
// What does not change is the derivation root, from which every MAC and
// cookie key derives (Master.Derive): the digests of recovery codes, API
// keys and client secrets cannot be recomputed, and sessions and browser
// bindings must survive the restarts. It is the installation's first key's
// bytes, kept in the database sealed under the newest key. The old key file
// therefore still derives those MAC and cookie keys after a rotation: see
// docs/master-key.md for what that means if a key file leaked.

// ErrChangeOpen means a master key change to another key is under way.
var ErrChangeOpen = errors.New("a master key change is already under way")

// ErrNoChange means no master key change is under way.
var ErrNoChange = errors.New("no master key change is under way")

// ErrOldValuesRemain means FinishRotation found values not sealed with the
// new key.
var ErrOldValuesRemain = errors.New("values are not yet sealed with the new master key")

// Change is an open master key change.
type Change struct {
	Old, New string // the keys' IDs (Master.ID)
	Started  time.Time
}

// OpenChange returns the change under way, or nil.
func OpenChange(ctx context.Context, db *storage.DB) (*Change, error) {
	rows, err := db.ListMasterKeys(ctx)
	if err != nil {
		return nil, err
	}
	var c Change
	for _, r := range rows {
		switch r.State {
		case storage.MasterOld:
			c.Old, c.Started = fmt.Sprintf("%x", r.ID), r.CreatedAt
		case storage.MasterNew:
			c.New = fmt.Sprintf("%x", r.ID)
		}
	}
	if c.New == "" {
		return nil, nil
	}
	return &c, nil
}

// StartRotation records a change from cur, checked against db, to next,
// or finds it recorded already (resumed: the same next key). It refuses a
// next key that is cur, that an earlier rotation retired, or that is not
// the new key of a change already under way.
func StartRotation(ctx context.Context, db *storage.DB, cur, next *Master) (resumed bool, err error) {
	rows, err := db.ListMasterKeys(ctx)
	if err != nil {
		return false, err
	}
	for _, r := range rows {
		if r.State == storage.MasterNew {
			if !hmac.Equal(r.CheckValue, next.checkValue()) {
				return false, fmt.Errorf("%w, to master key %x: pass its file as the new one to resume, or finish it first", ErrChangeOpen, r.ID)
			}
			return true, cur.ring.refresh(ctx)
		}
		if hmac.Equal(r.CheckValue, next.checkValue()) {
			return false, errors.New("the new master key was retired by an earlier rotation: generate another")
		}
	}
	if bytes.Equal(cur.file, next.file) {
		return false, errors.New("the new master key is the current one")
	}
	old := storage.MasterKey{ID: cur.ring.own.id, CheckValue: cur.checkValue(), State: storage.MasterOld,
		Wrapped: next.ring.own.seal(cur.file, storage.MasterWrapAAD(cur.ring.own.id))}
	nk := storage.MasterKey{ID: next.ring.own.id, CheckValue: next.checkValue(), State: storage.MasterNew,
		Wrapped: cur.ring.own.seal(next.file, storage.MasterWrapAAD(next.ring.own.id))}
	root := next.ring.own.seal(cur.root, storage.MasterRootAAD())
	if err := db.StartMasterChange(ctx, old, nk, root); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return false, fmt.Errorf("%w: another rotate-master started one", ErrChangeOpen)
		}
		return false, err
	}
	return false, cur.ring.refresh(ctx)
}

// Resealed is what Reseal did to one kind of sealed value.
type Resealed struct {
	Kind       string
	Resealed   int      // re-sealed with the new key now
	Already    int      // sealed with the new key before
	Changed    int      // replaced by a serving instance while this ran (with the new key)
	Unreadable []string // rows whose value no known key opens, as table:row
}

// Reseal re-seals, with the open change's new key, every sealed value
// that is not yet under it: batch rows at a time, each batch one
// transaction. m must be one of the change's keys, checked against db.
// progress, if set, is called after every batch with the kind's counts so
// far.
func Reseal(ctx context.Context, db *storage.DB, m *Master, batch int, progress func(Resealed)) ([]Resealed, error) {
	c, err := OpenChange(ctx, db)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, ErrNoChange
	}
	if err := m.ring.refresh(ctx); err != nil {
		return nil, err
	}
	k, err := m.ring.sealing()
	if err != nil {
		return nil, err
	}
	if fmt.Sprintf("%x", k.id) != c.New {
		return nil, fmt.Errorf("re-seal: this process cannot use the new master key %s", c.New)
	}
	var out []Resealed
	for _, col := range storage.SealedColumns {
		r, err := resealColumn(ctx, db, NewSealer(m), k, col, batch, progress)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func resealColumn(ctx context.Context, db *storage.DB, s *Sealer, k *sealKey, col storage.SealedColumn, batch int,
	progress func(Resealed)) (Resealed, error) {
	r := Resealed{Kind: col.Kind}
	for after := ""; ; {
		vs, err := db.ListSealed(ctx, col, after, batch)
		if err != nil || len(vs) == 0 {
			return r, err
		}
		after = vs[len(vs)-1].Row
		var changes []storage.SealedChange
		for _, v := range vs {
			if bytes.Equal(sealedID(v.Sealed), k.id) {
				r.Already++
				continue
			}
			pt, err := s.Open(v.Sealed, col.AAD(v.Row))
			if err != nil {
				r.Unreadable = append(r.Unreadable, col.Table+":"+v.Row)
				continue
			}
			changes = append(changes, storage.SealedChange{Row: v.Row, Old: v.Sealed, New: k.seal(pt, col.AAD(v.Row))})
		}
		if len(changes) > 0 {
			n, err := db.ReplaceSealed(ctx, col, changes)
			if err != nil {
				return r, err
			}
			r.Resealed += n
			r.Changed += len(changes) - n
		}
		if progress != nil {
			progress(r)
		}
	}
}

func sealedID(sealed []byte) []byte {
	if len(sealed) < v2Header || sealed[0] != sealV2 {
		return nil
	}
	return sealed[1:v2Header]
}

// Left is how many values of one kind are not sealed with a key.
type Left struct {
	Kind string
	N    int
}

// NotSealedWith counts, per kind, the values not sealed with the key id
// (version-1 values included: they predate key IDs).
func NotSealedWith(ctx context.Context, db *storage.DB, id string) ([]Left, int, error) {
	var out []Left
	total := 0
	for _, col := range storage.SealedColumns {
		l := Left{Kind: col.Kind}
		for after := ""; ; {
			vs, err := db.ListSealed(ctx, col, after, 500)
			if err != nil {
				return nil, 0, err
			}
			if len(vs) == 0 {
				break
			}
			after = vs[len(vs)-1].Row
			for _, v := range vs {
				if SealedKeyID(v.Sealed) != id {
					l.N++
				}
			}
		}
		out = append(out, l)
		total += l.N
	}
	return out, total, nil
}

// FinishRotation ends the open change once every value is sealed with the
// new key (ErrOldValuesRemain otherwise, with the counts): the new key
// becomes the current one and the old key opens nothing any more.
func FinishRotation(ctx context.Context, db *storage.DB) (*Change, []Left, error) {
	c, err := OpenChange(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	if c == nil {
		return nil, nil, ErrNoChange
	}
	left, n, err := NotSealedWith(ctx, db, c.New)
	if err != nil {
		return c, nil, err
	}
	if n > 0 {
		return c, left, fmt.Errorf("%w: %d", ErrOldValuesRemain, n)
	}
	rows, err := db.ListMasterKeys(ctx)
	if err != nil {
		return c, nil, err
	}
	var oldID, newID, newCheck []byte
	for _, r := range rows {
		switch r.State {
		case storage.MasterOld:
			oldID = r.ID
		case storage.MasterNew:
			newID, newCheck = r.ID, r.CheckValue
		}
	}
	if err := db.FinishMasterChange(ctx, oldID, newID, newCheck); err != nil {
		return c, nil, err
	}
	return c, left, nil
}
