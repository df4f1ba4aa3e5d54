package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// States of a pending sign-up (login/signup.go walks them).
const (
	SignupCode     = "code"     // a code was sent to the email address; it is due
	SignupUsername = "username" // the address is proven, the username was taken: another is due
	SignupEnroll   = "enroll"   // a new TOTP secret was shown; its first code is due
	SignupCreating = "creating" // one request is turning it into an account
	SignupDead     = "dead"     // too many wrong codes
)

// Signup is a self-service sign-up that is not an account yet: it waits
// for its email address to be proven and its second factor to be set up.
// It belongs to the browser that started it (BindingHash) and dies with
// its authorization request.
type Signup struct {
	ID            string       `db:"id"`
	AuthRequestID string       `db:"auth_request_id"`
	ClientID      string       `db:"client_id"`
	Door          string       `db:"door"` // DoorPages or DoorAPI: the only door that may go on with it
	BindingHash   []byte       `db:"binding_hash"`
	Username      string       `db:"username"`
	Email         string       `db:"email"`
	PasswordHash  string       `db:"password_hash"`
	Method        string       `db:"method"` // the second factor the account gets: TOTP or EMAIL
	State         string       `db:"state"`
	Failures      int          `db:"failures"`
	CodeMAC       []byte       `db:"code_mac"`
	CodeExpiresAt sql.NullTime `db:"code_expires_at"`
	CodeSentAt    sql.NullTime `db:"code_sent_at"`
	PendingSecret []byte       `db:"pending_secret"` // sealed (SignupSecretAAD)
	CreatedAt     time.Time    `db:"created_at"`
	ExpiresAt     time.Time    `db:"expires_at"`
}

const signupColumns = `id, auth_request_id, client_id, door, binding_hash, username, email, password_hash, method, state, failures,
	code_mac, code_expires_at, code_sent_at, pending_secret, created_at, expires_at`

// CreateSignup stores a new sign-up in state SignupCode. The caller sets
// the ID (unguessable), the binding and ExpiresAt.
func (d *DB) CreateSignup(ctx context.Context, s *Signup) error {
	if len(s.BindingHash) == 0 {
		return errors.New("create sign-up: no binding") // a sign-up bound to nothing could be finished by anyone
	}
	if s.Door != DoorPages && s.Door != DoorAPI {
		return fmt.Errorf("create sign-up: no door %q", s.Door)
	}
	s.CreatedAt, s.State = d.Now(), SignupCode
	const q = `INSERT INTO signups (id, auth_request_id, client_id, door, binding_hash, username, email, password_hash, method,
		state, failures, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`
	_, err := d.exec(ctx, d.w, q, s.ID, s.AuthRequestID, s.ClientID, s.Door, s.BindingHash, s.Username, s.Email, s.PasswordHash,
		s.Method, s.State, s.CreatedAt, s.ExpiresAt.UTC())
	if err != nil {
		return fmt.Errorf("create sign-up: %w", err)
	}
	return nil
}

// GetSignup returns the sign-up with this ID.
func (d *DB) GetSignup(ctx context.Context, id string) (*Signup, error) {
	var s Signup
	if err := d.get(ctx, d.w, &s, `SELECT `+signupColumns+` FROM signups WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("get sign-up: %w", err)
	}
	return &s, nil
}

// SetSignupCode stores the MAC of a newly sent code on a sign-up waiting
// for one, replacing any earlier code, and notes when it was sent.
func (d *DB) SetSignupCode(ctx context.Context, id string, mac []byte, expiresAt time.Time) error {
	const q = `UPDATE signups SET code_mac = ?, code_expires_at = ?, code_sent_at = ? WHERE id = ? AND state = 'code'`
	return d.signupChanged(ctx, "set sign-up code", q, mac, expiresAt.UTC(), d.Now(), id)
}

// ReserveSignupAttempt takes one of a sign-up's maxFailures code slots
// before the code is checked, in one statement, so that of N concurrent
// guesses on every instance at most maxFailures are evaluated. It reports
// false when none is left or the sign-up is not waiting for a code (state).
func (d *DB) ReserveSignupAttempt(ctx context.Context, id, state string, maxFailures int) (int, bool, error) {
	const q = `UPDATE signups SET failures = failures + 1 WHERE id = ? AND state = ? AND failures < ? RETURNING failures`
	var n int
	err := d.get(ctx, d.w, &n, q, id, state, maxFailures)
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("reserve sign-up attempt: %w", err)
	}
	return n, true, nil
}

// ReleaseSignupAttempt gives a reserved slot back: the code was not
// evaluated, or it was right.
func (d *DB) ReleaseSignupAttempt(ctx context.Context, id string) error {
	_, err := d.exec(ctx, d.w, `UPDATE signups SET failures = failures - 1 WHERE id = ? AND failures > 0`, id)
	if err != nil {
		return fmt.Errorf("release sign-up attempt: %w", err)
	}
	return nil
}

// KillSignup ends a sign-up whose code slots are all used.
func (d *DB) KillSignup(ctx context.Context, id string, maxFailures int) error {
	const q = `UPDATE signups SET state = 'dead', code_mac = NULL, pending_secret = NULL, password_hash = ''
		WHERE id = ? AND state IN ('code', 'enroll') AND failures >= ?`
	if _, err := d.exec(ctx, d.w, q, id, maxFailures); err != nil {
		return fmt.Errorf("kill sign-up: %w", err)
	}
	return nil
}

// MoveSignup moves a sign-up from state from to state to; only one caller
// can, the others get ErrNotFound. Moving to SignupEnroll stores the sealed
// secret and starts the code count over; leaving SignupCode voids the code.
func (d *DB) MoveSignup(ctx context.Context, id, from, to string, sealed []byte) error {
	const q = `UPDATE signups SET state = ?,
		pending_secret = CASE WHEN ? THEN ? ELSE pending_secret END,
		failures = CASE WHEN ? THEN 0 ELSE failures END,
		code_mac = NULL
		WHERE id = ? AND state = ?`
	enroll := to == SignupEnroll
	return d.signupChanged(ctx, "move sign-up", q, to, enroll, sealed, enroll, id, from)
}

// RenameSignup gives a sign-up whose username was taken another one.
func (d *DB) RenameSignup(ctx context.Context, id, username string) error {
	const q = `UPDATE signups SET username = ? WHERE id = ? AND state = 'username'`
	return d.signupChanged(ctx, "rename sign-up", q, username, id)
}

// DeleteSignup removes a sign-up that became an account.
func (d *DB) DeleteSignup(ctx context.Context, id string) error {
	if _, err := d.exec(ctx, d.w, `DELETE FROM signups WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete sign-up: %w", err)
	}
	return nil
}

func (d *DB) signupChanged(ctx context.Context, what, q string, args ...any) error {
	n, err := d.exec(ctx, d.w, q, args...)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// SignupSecretAAD binds a sign-up's pending TOTP secret to its row.
func SignupSecretAAD(id string) []byte {
	return []byte("signups.pending_secret:" + id)
}
