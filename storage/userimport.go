package storage

import (
	"context"
	"fmt"
	"strings"
)

// ReplacePasswordHash swaps a user's password hash for a new one if the
// stored hash is still old, and reports whether it did: the login's
// re-hash of an imported (or outdated) hash after a successful sign-in.
// The compare and the swap are one statement, so a password set meanwhile
// is never overwritten. Nothing a client sees changes, so the version
// (the management API's ETag) stays.
func (d *DB) ReplacePasswordHash(ctx context.Context, userID, old, hash string) (bool, error) {
	const q = `UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?`
	n, err := d.exec(ctx, d.w, q, hash, userID, old)
	if err != nil {
		return false, fmt.Errorf("replace password hash of user %s: %w", userID, err)
	}
	return n == 1, nil
}

// ImportUser is one account for ImportUsers.
type ImportUser struct {
	User
	// TOTPSealed is the user's TOTP secret sealed with TOTPSecretAAD(ID)
	// (so the caller sets User.ID first); nil: no authenticator.
	TOTPSealed []byte
}

// Why ImportUsers skipped an account.
const (
	SkipUsernameTaken = "username already exists"
	SkipEmailTaken    = "email already exists"
	SkipPhoneTaken    = "phone already exists"
)

// ValidateUser checks what CreateUser and ImportUsers would refuse in u
// (username, phone, preferred method, roles, attributes), without the
// database: an import reports a bad line before its batch is written.
func ValidateUser(u *User) error { return u.validate() }

// importChunk bounds the rows of one INSERT: 16 parameters a row stays
// far under SQLite's 32 766 and PostgreSQL's 65 535.
const importChunk = 1000

// ImportUsers inserts accounts in one transaction, with multi-row INSERTs
// that skip (ON CONFLICT DO NOTHING) every account whose username or email
// is already taken — by an existing user or an earlier row of the same
// call — and never update one: running an import twice changes nothing.
// It returns, for each input, "" if it was inserted or why it was skipped.
// An error means nothing was written.
func (d *DB) ImportUsers(ctx context.Context, in []ImportUser) ([]string, error) {
	for i := range in {
		if err := d.prepareImport(&in[i].User); err != nil {
			return nil, fmt.Errorf("import user %q: %w", in[i].Username, err)
		}
	}
	var skipped []string
	err := d.tx(ctx, func(q queryer) error {
		inserted := map[string]bool{}
		for start := 0; start < len(in); start += importChunk {
			ids, err := d.insertUsers(ctx, q, in[start:min(start+importChunk, len(in))])
			if err != nil {
				return err
			}
			for _, id := range ids {
				inserted[id] = true
			}
		}
		if err := d.insertTOTPs(ctx, q, in, inserted); err != nil {
			return err
		}
		var err error
		skipped, err = d.skipReasons(ctx, q, in, inserted)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("import %d users: %w", len(in), err)
	}
	return skipped, nil
}

// prepareImport is prepareNewUser keeping a caller's ID.
func (d *DB) prepareImport(u *User) error {
	id := u.ID
	if err := d.prepareNewUser(u); err != nil {
		return err
	}
	if id != "" {
		u.ID = id
	}
	return nil
}

func (d *DB) insertUsers(ctx context.Context, q queryer, rows []ImportUser) ([]string, error) {
	var b strings.Builder
	b.WriteString(`INSERT INTO users (id, username, username_key, email, email_key, phone, phone_key, preferred_method, password_hash,
		roles, attributes, disabled, otp_exempt, created_at, updated_at, version) VALUES `)
	args := make([]any, 0, 16*len(rows))
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		u := &r.User
		args = append(args, u.ID, u.Username, UsernameKey(u.Username), u.Email, EmailKey(u.Email), u.Phone, PhoneKey(u.Phone),
			u.Preferred, u.PasswordHash, u.Roles, u.Attributes, u.Disabled, u.OTPExempt, u.CreatedAt, u.UpdatedAt, u.Version)
	}
	b.WriteString(" ON CONFLICT DO NOTHING RETURNING id")
	var ids []string
	if err := d.direct(ctx, q, &ids, b.String(), args...); err != nil {
		return nil, fmt.Errorf("insert users: %w", err)
	}
	return ids, nil
}

func (d *DB) insertTOTPs(ctx context.Context, q queryer, in []ImportUser, inserted map[string]bool) error {
	var rows []ImportUser
	for _, r := range in {
		if r.TOTPSealed != nil && inserted[r.ID] {
			rows = append(rows, r)
		}
	}
	for start := 0; start < len(rows); start += importChunk {
		chunk := rows[start:min(start+importChunk, len(rows))]
		query := `INSERT INTO totp_enrolments (user_id, secret_sealed, last_step, created_at) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, 0, ?), ", len(chunk)), ", ")
		args := make([]any, 0, 3*len(chunk))
		for _, r := range chunk {
			args = append(args, r.ID, r.TOTPSealed, r.CreatedAt)
		}
		if err := d.direct(ctx, q, nil, query, args...); err != nil {
			return fmt.Errorf("insert TOTP enrolments: %w", err)
		}
	}
	return nil
}

// skipReasons says, for each row not inserted, which of its keys was
// taken: the username if a user holds it now (the row's own insert did
// not happen, so that user is another), else the email if one does, else
// the phone number.
func (d *DB) skipReasons(ctx context.Context, q queryer, in []ImportUser, inserted map[string]bool) ([]string, error) {
	out := make([]string, len(in))
	var names, emails []string
	for _, r := range in {
		if !inserted[r.ID] {
			names = append(names, UsernameKey(r.Username))
			emails = append(emails, EmailKey(r.Email))
		}
	}
	takenNames, err := d.takenKeys(ctx, q, "username_key", names)
	if err != nil {
		return nil, err
	}
	takenEmails, err := d.takenKeys(ctx, q, "email_key", emails)
	if err != nil {
		return nil, err
	}
	for i, r := range in {
		switch {
		case inserted[r.ID]:
		case takenNames[UsernameKey(r.Username)]:
			out[i] = SkipUsernameTaken
		case EmailKey(r.Email) != "" && takenEmails[EmailKey(r.Email)]:
			out[i] = SkipEmailTaken
		default:
			out[i] = SkipPhoneTaken
		}
	}
	return out, nil
}

// takenKeys returns which of keys a user holds in column (a unique key
// column: username_key or email_key), in chunks.
func (d *DB) takenKeys(ctx context.Context, q queryer, column string, keys []string) (map[string]bool, error) {
	taken := map[string]bool{}
	for start := 0; start < len(keys); start += importChunk {
		chunk := keys[start:min(start+importChunk, len(keys))]
		args := make([]any, len(chunk))
		for i, k := range chunk {
			args[i] = k
		}
		var found []string
		query := `SELECT ` + column + ` FROM users WHERE ` + column + ` IN (` +
			strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ") + `)`
		if err := d.direct(ctx, q, &found, query, args...); err != nil {
			return nil, fmt.Errorf("find taken %s: %w", column, err)
		}
		for _, k := range found {
			taken[k] = true
		}
	}
	return taken, nil
}

// direct runs a query built at run time on q without the statement cache
// (its text changes with the number of rows, and would only crowd the
// cache out): into dest if set, else as an exec.
func (d *DB) direct(ctx context.Context, q queryer, dest any, query string, args ...any) error {
	query = d.q(query)
	d.note(query)
	var err error
	if dest != nil {
		err = q.SelectContext(ctx, dest, query, args...)
	} else {
		_, err = q.ExecContext(ctx, query, args...)
	}
	return mapErr(err)
}
