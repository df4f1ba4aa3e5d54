package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// States of a login transaction.
const (
	TxOTP    = "otp"    // the password was accepted; a one-time code is due
	TxEnroll = "enroll" // a new TOTP secret was shown; its first code is due
	TxDone   = "done"   // the second factor was accepted
	TxDead   = "dead"   // too many wrong codes: start again from the password
)

// Front doors a login transaction can belong to; every other door refuses it.
const (
	DoorPages  = "pages"  // stile's own HTML pages, bound to the browser's cookie
	DoorAPI    = "api"    // the JSON login API of a client with a login_url
	DoorDirect = "direct" // the direct mode, bound to the client's apiKey
	// DoorChallenge is the authorization challenge endpoint (first-party
	// apps), bound to the client and its PKCE challenge.
	DoorChallenge = "challenge"
)

// LoginTransaction is one attempt at the second step of a login, opened when
// a password is accepted. It belongs to the browser (or, in direct mode, the
// client) that proved the password.
type LoginTransaction struct {
	ID            string         `db:"id"`
	AuthRequestID sql.NullString `db:"auth_request_id"`
	ClientID      string         `db:"client_id"`
	Door          string         `db:"door"`         // DoorPages, DoorAPI, DoorDirect or DoorChallenge
	UserID        string         `db:"user_id"`      // "": a passwordless transaction no account matched
	Passwordless  bool           `db:"passwordless"` // the code is the only factor (login/passwordless.go)
	Subject       string         `db:"subject"`      // the throttle's name for an unmatched identifier
	BindingHash   []byte         `db:"binding_hash"`
	Method        string         `db:"method"` // TOTP, …: chosen by the server, never by the caller
	OTPFailures   int            `db:"otp_failures"`
	State         string         `db:"state"`
	CreatedAt     time.Time      `db:"created_at"`
	ExpiresAt     time.Time      `db:"expires_at"`
	CodeMAC       []byte         `db:"code_mac"`        // a sent code's keyed MAC (EMAIL, SMS)
	CodeExpiresAt sql.NullTime   `db:"code_expires_at"` // …and when it stops working
	CodeSentAt    sql.NullTime   `db:"code_sent_at"`    // for the resend cooldown
	PendingSecret []byte         `db:"pending_secret"`  // a sealed TOTP secret awaiting its first code
}

const txColumns = `id, auth_request_id, client_id, door, COALESCE(user_id, '') AS user_id, binding_hash, method, otp_failures,
	state, created_at, expires_at, code_mac, code_expires_at, code_sent_at, pending_secret, passwordless, subject`

// CreateLoginTransaction stores a new transaction in state TxOTP. The caller
// sets the ID (unguessable), the Door and ExpiresAt.
func (d *DB) CreateLoginTransaction(ctx context.Context, t *LoginTransaction) error {
	switch t.Door {
	case DoorPages, DoorAPI, DoorDirect, DoorChallenge:
	default:
		return fmt.Errorf("create login transaction: unknown door %q", t.Door)
	}
	t.CreatedAt = d.Now()
	t.State = TxOTP
	const q = `INSERT INTO login_transactions (id, auth_request_id, client_id, door, user_id, binding_hash, method, otp_failures,
		state, created_at, expires_at, passwordless, subject) VALUES (?, ?, ?, ?, NULLIF(?, ''), ?, ?, 0, ?, ?, ?, ?, ?)`
	_, err := d.exec(ctx, d.w, q, t.ID, t.AuthRequestID, t.ClientID, t.Door, t.UserID, t.BindingHash, t.Method,
		t.State, t.CreatedAt, t.ExpiresAt.UTC(), t.Passwordless, t.Subject)
	if err != nil {
		return fmt.Errorf("create login transaction: %w", err)
	}
	return nil
}

// GetLoginTransaction returns the transaction with this ID.
func (d *DB) GetLoginTransaction(ctx context.Context, id string) (*LoginTransaction, error) {
	var t LoginTransaction
	if err := d.get(ctx, d.r, &t, `SELECT `+txColumns+` FROM login_transactions WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("get login transaction: %w", err)
	}
	return &t, nil
}

// OTPReservation is the outcome of reserving a code guess on a
// transaction: refused because a subject is locked (Allowed false,
// RetryAfter), or because the transaction has no tries left or is not open
// (Spent); otherwise OTPFailures counts this guess.
type OTPReservation struct {
	Reservation
	Spent       bool
	OTPFailures int
}

var errSpent, errLocked = errors.New("no tries left"), errors.New("locked")

// ReserveOTPAttempt reserves a wrong-code slot on an open transaction and
// counts the guess against claims, in one transaction, before the code is
// checked: a transaction with maxFailures reserved slots takes no more, so
// of N concurrent guesses on every instance at most maxFailures are
// evaluated. A wrong guess keeps its slot (KillSpentTransaction ends the
// transaction once they are all used); a right one finishes it.
func (d *DB) ReserveOTPAttempt(ctx context.Context, id string, maxFailures int, forgetBefore time.Time, claims []Claim) (*OTPReservation, error) {
	out := &OTPReservation{}
	err := d.tx(ctx, func(q queryer) error {
		const slot = `UPDATE login_transactions SET otp_failures = otp_failures + 1
			WHERE id = ? AND state IN ('otp', 'enroll') AND otp_failures < ? RETURNING otp_failures`
		if err := d.get(ctx, q, &out.OTPFailures, slot, id, maxFailures); errors.Is(err, ErrNotFound) {
			return errSpent
		} else if err != nil {
			return err
		}
		res, err := d.reserve(ctx, q, forgetBefore, claims)
		if err != nil {
			return err
		}
		if out.Reservation = *res; !res.Allowed {
			return errLocked // roll the slot back: the guess is not evaluated
		}
		return nil
	})
	switch {
	case errors.Is(err, errSpent):
		out.Spent = true
		return out, nil
	case errors.Is(err, errLocked):
		return out, nil
	case err != nil:
		return nil, fmt.Errorf("reserve OTP attempt: %w", err)
	}
	return out, nil
}

// KillSpentTransaction ends an open transaction whose wrong-code slots are
// all used: it is dead, and its login starts over at the password.
func (d *DB) KillSpentTransaction(ctx context.Context, id string, maxFailures int) error {
	const q = `UPDATE login_transactions SET state = 'dead', code_mac = NULL, pending_secret = NULL
		WHERE id = ? AND state IN ('otp', 'enroll') AND otp_failures >= ?`
	if _, err := d.exec(ctx, d.w, q, id, maxFailures); err != nil {
		return fmt.Errorf("kill spent login transaction: %w", err)
	}
	return nil
}

// FinishLoginTransaction moves an open transaction to TxDone. Only one
// caller can do so; the others get ErrNotFound.
func (d *DB) FinishLoginTransaction(ctx context.Context, id string) error {
	n, err := d.exec(ctx, d.w, `UPDATE login_transactions SET state = 'done', code_mac = NULL, pending_secret = NULL
		WHERE id = ? AND state IN ('otp', 'enroll')`, id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("finish login transaction: %w", err)
	}
	return nil
}

// SetTransactionCode stores the MAC of a newly sent code on an open
// transaction, replacing any earlier code, and notes when it was sent.
func (d *DB) SetTransactionCode(ctx context.Context, id string, mac []byte, expiresAt time.Time) error {
	const q = `UPDATE login_transactions SET code_mac = ?, code_expires_at = ?, code_sent_at = ? WHERE id = ? AND state = 'otp'`
	n, err := d.exec(ctx, d.w, q, mac, expiresAt.UTC(), d.Now(), id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set transaction code: %w", err)
	}
	return nil
}

// StartEnrollment moves an open transaction to TxEnroll with a sealed TOTP
// secret that its next code must confirm. The code count starts over.
func (d *DB) StartEnrollment(ctx context.Context, id string, sealed []byte) error {
	const q = `UPDATE login_transactions SET state = 'enroll', pending_secret = ?, code_mac = NULL, otp_failures = 0
		WHERE id = ? AND state = 'otp'`
	n, err := d.exec(ctx, d.w, q, sealed, id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("start enrolment: %w", err)
	}
	return nil
}

// PendingSecretAAD binds a transaction's pending TOTP secret to it.
func PendingSecretAAD(txID string) []byte {
	return []byte("login_transactions.pending_secret:" + txID)
}
