package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// ErrInvalid marks a value the store refuses; the wrapped text says why.
var ErrInvalid = errors.New("invalid")

// MaxAttributesSize caps a user's attributes as JSON: they travel in every
// token, and a token must fit in a header.
const MaxAttributesSize = 4096

// User is an account that can sign in.
type User struct {
	ID           string     `db:"id" json:"uid"` // stable: the tokens' sub and uid
	Username     string     `db:"username" json:"username"`
	Email        string     `db:"email" json:"email"`
	Phone        string     `db:"phone" json:"phone"`                       // for SMS codes
	Preferred    string     `db:"preferred_method" json:"preferred_method"` // TOTP, EMAIL or SMS; "" for the default
	PasswordHash string     `db:"password_hash" json:"-"`
	Roles        Strings    `db:"roles" json:"roles"`
	Attributes   Attributes `db:"attributes" json:"attributes"`
	Disabled     bool       `db:"disabled" json:"disabled"`
	OTPExempt    bool       `db:"otp_exempt" json:"otp_exempt"` // signs in with the password alone: test accounts only
	CreatedAt    time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt    time.Time  `db:"updated_at" json:"updated_at"`
	Version      int64      `db:"version" json:"version"` // bumped by every change: the management API's ETag
}

// EmailKey is the form of an email address that uniqueness and lookups
// use: trimmed and lower-cased. "" (no address) is never a conflict.
func EmailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// PhoneKey is the form of a phone number that uniqueness and lookups use:
// E.164 ('+' and digits). "" (no number, or none E164 accepts) is never a
// conflict.
func PhoneKey(phone string) string {
	if n, ok := E164(phone); ok {
		return n
	}
	return ""
}

// ConflictField names the field a unique-constraint violation (ErrConflict)
// is about: "email", "phone" or "username".
func ConflictField(err error) string {
	switch s := err.Error(); {
	case strings.Contains(s, "email_key"):
		return "email"
	case strings.Contains(s, "phone_key"):
		return "phone"
	}
	return "username"
}

// UsernameKey is the form of a username that uniqueness and lookups use:
// NFKC-normalised and case-folded, so "Alice" and "ALICE" are one account.
func UsernameKey(name string) string {
	return cases.Fold().String(norm.NFKC.String(strings.TrimSpace(name)))
}

// validate checks what the schema cannot.
func (u *User) validate() error {
	name := strings.TrimSpace(u.Username)
	switch {
	case name == "":
		return fmt.Errorf("%w: username is empty", ErrInvalid)
	case utf8.RuneCountInString(name) > 128:
		return fmt.Errorf("%w: username is longer than 128 characters", ErrInvalid)
	case strings.ContainsAny(name, " \t\r\n:"):
		return fmt.Errorf("%w: username %q contains whitespace or ':'", ErrInvalid, name)
	}
	if _, ok := E164(u.Phone); u.Phone != "" && !ok {
		return fmt.Errorf("%w: phone %q: use the international format, e.g. +44 20 7946 0000", ErrInvalid, u.Phone)
	}
	switch u.Preferred {
	case "", "TOTP", "EMAIL", "SMS":
	default:
		return fmt.Errorf("%w: preferred method %q: use TOTP, EMAIL or SMS", ErrInvalid, u.Preferred)
	}
	for _, r := range u.Roles {
		if strings.TrimSpace(r) == "" {
			return fmt.Errorf("%w: empty role", ErrInvalid)
		}
	}
	if _, ok := u.Attributes[""]; ok {
		return fmt.Errorf("%w: attributes: a key is empty", ErrInvalid)
	}
	b, err := json.Marshal(u.Attributes)
	if err != nil {
		return fmt.Errorf("%w: attributes: %v", ErrInvalid, err)
	}
	if len(b) > MaxAttributesSize {
		return fmt.Errorf("%w: attributes are %d bytes as JSON, more than %d", ErrInvalid, len(b), MaxAttributesSize)
	}
	return nil
}

const userColumns = `id, username, email, phone, preferred_method, password_hash, roles, attributes, disabled, otp_exempt,
	created_at, updated_at, version`

// CreateUser stores a new user and fills in its ID and timestamps.
// A username already taken, in any letter case, or an email address or
// phone number another account has, is ErrConflict (ConflictField says
// which).
func (d *DB) CreateUser(ctx context.Context, u *User) error {
	if err := d.prepareNewUser(u); err != nil {
		return err
	}
	if err := d.insertUser(ctx, d.w, u); err != nil {
		return fmt.Errorf("create user %q: %w", u.Username, err)
	}
	return nil
}

// prepareNewUser validates u and fills in what a new user gets: an ID,
// timestamps, version 1, empty roles and attributes.
func (d *DB) prepareNewUser(u *User) error {
	if err := u.validate(); err != nil {
		return err
	}
	u.ID = uuid.NewString()
	u.Username = strings.TrimSpace(u.Username)
	u.Email = strings.TrimSpace(u.Email)
	u.CreatedAt = d.Now()
	u.UpdatedAt = u.CreatedAt
	u.Version = 1
	if u.Roles == nil {
		u.Roles = Strings{}
	}
	if u.Attributes == nil {
		u.Attributes = Attributes{}
	}
	return nil
}

func (d *DB) insertUser(ctx context.Context, q queryer, u *User) error {
	const ins = `INSERT INTO users (id, username, username_key, email, email_key, phone, phone_key, preferred_method, password_hash,
		roles, attributes, disabled, otp_exempt, created_at, updated_at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	_, err := d.exec(ctx, q, ins, u.ID, u.Username, UsernameKey(u.Username), u.Email, EmailKey(u.Email), u.Phone, PhoneKey(u.Phone),
		u.Preferred, u.PasswordHash, u.Roles, u.Attributes, u.Disabled, u.OTPExempt, u.CreatedAt, u.UpdatedAt, u.Version)
	return err
}

// GetUser returns the user with this ID.
func (d *DB) GetUser(ctx context.Context, id string) (*User, error) {
	var u User
	d.countRead("users")
	if err := d.get(ctx, d.r, &u, `SELECT `+userColumns+` FROM users WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("get user %s: %w", id, err)
	}
	return &u, nil
}

// GetUserByUsername looks a user up by name, ignoring letter case.
func (d *DB) GetUserByUsername(ctx context.Context, name string) (*User, error) {
	var u User
	if err := d.get(ctx, d.r, &u, `SELECT `+userColumns+` FROM users WHERE username_key = ?`, UsernameKey(name)); err != nil {
		return nil, fmt.Errorf("get user %q: %w", name, err)
	}
	return &u, nil
}

// GetUserByEmail looks a user up by email address, ignoring letter case.
func (d *DB) GetUserByEmail(ctx context.Context, email string) (*User, error) {
	var u User
	key := EmailKey(email)
	if key == "" {
		return nil, fmt.Errorf("get user by email: %w", ErrNotFound)
	}
	if err := d.get(ctx, d.r, &u, `SELECT `+userColumns+` FROM users WHERE email_key = ?`, key); err != nil {
		return nil, fmt.Errorf("get user by email: %w", err)
	}
	return &u, nil
}

// GetUserByPhone looks a user up by phone number, in E.164: "+44 20 7946
// 0000" and "+442079460000" are one number.
func (d *DB) GetUserByPhone(ctx context.Context, phone string) (*User, error) {
	var u User
	key := PhoneKey(phone)
	if key == "" {
		return nil, fmt.Errorf("get user by phone: %w", ErrNotFound)
	}
	if err := d.get(ctx, d.r, &u, `SELECT `+userColumns+` FROM users WHERE phone_key = ?`, key); err != nil {
		return nil, fmt.Errorf("get user by phone: %w", err)
	}
	return &u, nil
}

// DeleteUser deletes the user and, through the schema's cascades,
// everything of theirs: sessions, tokens, factors, consents. The audit
// trail keeps its events.
func (d *DB) DeleteUser(ctx context.Context, id string) error {
	n, err := d.exec(ctx, d.w, `DELETE FROM users WHERE id = ?`, id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	return nil
}

// UpdateUser reads the user, lets fn change it, and writes it back in one
// transaction, bumping its version. The ID and creation time cannot
// change. On PostgreSQL the row is locked from the read, so concurrent
// updates apply one after the other and fn sees the version it replaces.
func (d *DB) UpdateUser(ctx context.Context, id string, fn func(*User) error) (*User, error) {
	var out User
	sel := `SELECT ` + userColumns + ` FROM users WHERE id = ?`
	if d.dialect == Postgres {
		sel += ` FOR UPDATE`
	}
	err := d.tx(ctx, func(q queryer) error {
		if err := d.get(ctx, q, &out, sel, id); err != nil {
			return err
		}
		if err := fn(&out); err != nil {
			return err
		}
		if err := out.validate(); err != nil {
			return err
		}
		out.ID = id
		out.Username = strings.TrimSpace(out.Username)
		out.Email = strings.TrimSpace(out.Email)
		out.UpdatedAt = d.Now()
		out.Version++
		const upd = `UPDATE users SET username = ?, username_key = ?, email = ?, email_key = ?, phone = ?, phone_key = ?,
			preferred_method = ?, password_hash = ?, roles = ?, attributes = ?, disabled = ?, otp_exempt = ?,
			updated_at = ?, version = ? WHERE id = ?`
		_, err := d.exec(ctx, q, upd, out.Username, UsernameKey(out.Username), out.Email, EmailKey(out.Email), out.Phone,
			PhoneKey(out.Phone), out.Preferred, out.PasswordHash, out.Roles, out.Attributes, out.Disabled, out.OTPExempt, out.UpdatedAt,
			out.Version, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update user %s: %w", id, err)
	}
	return &out, nil
}

// ListUsers returns every user, ordered by username.
func (d *DB) ListUsers(ctx context.Context) ([]User, error) {
	var out []User
	if err := d.sel(ctx, d.r, &out, `SELECT `+userColumns+` FROM users ORDER BY username_key`); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// E164 returns a phone number as SMS gateways want it, '+' and digits
// only, and whether it is one: '+', a country code and up to 15 digits in
// all. Spaces, dots, hyphens and parentheses may stand between the digits
// for readability.
func E164(p string) (string, bool) {
	n := strings.Map(func(r rune) rune {
		if strings.ContainsRune(" .-()", r) {
			return -1
		}
		return r
	}, p)
	digits, ok := strings.CutPrefix(n, "+")
	return n, ok && len(digits) >= 7 && len(digits) <= 15 && digits[0] != '0' && strings.Trim(digits, "0123456789") == ""
}

// InvalidReason is the text of an ErrInvalid refusal after "invalid: ",
// without the context it was wrapped in.
func InvalidReason(err error) string {
	s := err.Error()
	if _, after, ok := strings.Cut(s, ErrInvalid.Error()+": "); ok {
		return after
	}
	return s
}
