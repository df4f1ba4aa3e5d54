package keys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stile-id/stile/storage"
)

// SwitchOverlap is how long a key of a newly chosen default algorithm is
// published before it signs, when the server starts with another
// --signing-alg than the one signing: verifiers that cache the JWKS learn
// it first.
const SwitchOverlap = time.Hour

// Ensure makes the keys the server needs exist, at start:
//   - a default key, of alg (RS256 when alg is "") on a new database;
//   - when alg is set and differs from the default's, a key of alg published
//     now that becomes the default after SwitchOverlap (unless one is already
//     waiting);
//   - an active key for every algorithm a client pins.
//
// When several instances start together they may all generate keys, but
// the schema admits one active and one next key per algorithm and one
// default: the losers' inserts fail and they use the winners'.
func (m *Manager) Ensure(ctx context.Context, alg string) error {
	if alg != "" {
		if _, err := ParseAlgorithm(alg); err != nil {
			return err
		}
	}
	if err := m.ensureDefault(ctx, alg); err != nil {
		return err
	}
	pinned, err := m.db.PinnedAlgorithms(ctx)
	if err != nil {
		return err
	}
	for _, a := range pinned {
		if err := m.EnsurePinned(ctx, a); err != nil {
			return err
		}
	}
	m.invalidate()
	return nil
}

func (m *Manager) ensureDefault(ctx context.Context, alg string) error {
	cur, err := m.db.ActiveSigningKey(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		if alg == "" {
			alg = storage.AlgRS256
		}
		k, err := m.generate(alg, storage.KeyActive, true)
		if err != nil {
			return err
		}
		if err := m.db.CreateSigningKey(ctx, k); err != nil && !errors.Is(err, storage.ErrConflict) {
			return err
		}
		_, err = m.db.ActiveSigningKey(ctx)
		return err
	}
	if err != nil || alg == "" || cur.Algorithm == alg {
		return err
	}
	stored, err := m.db.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	if hasKey(stored, alg, storage.KeyNext) {
		return nil // a switch to alg is already under way
	}
	if _, err := m.Rotate(ctx, alg, SwitchOverlap); err != nil && !errors.Is(err, ErrNextExists) {
		return fmt.Errorf("switch the signing algorithm to %s: %w", alg, err)
	}
	return nil
}

// EnsurePinned makes an active key of alg exist for the clients that pin
// it. It is not the default, and it is created active: those clients have
// never been sent a token of alg.
func (m *Manager) EnsurePinned(ctx context.Context, alg string) error {
	if _, err := ParseAlgorithm(alg); err != nil {
		return err
	}
	stored, err := m.db.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	if hasKey(stored, alg, storage.KeyActive) {
		return nil
	}
	k, err := m.generate(alg, storage.KeyActive, false)
	if err != nil {
		return err
	}
	if err := m.db.CreateSigningKey(ctx, k); err != nil && !errors.Is(err, storage.ErrConflict) {
		return err
	}
	return nil
}
