package storage

import (
	"context"
	"fmt"
	"strings"
)

// UserFilter selects users for SearchUsers. Zero fields select everyone.
type UserFilter struct {
	UsernamePrefix string // compared as UsernameKey
	EmailPrefix    string // compared as EmailKey
	Role           string // holds this role
	AttrKey        string // with AttrValue: attributes[AttrKey], as text, equals AttrValue
	AttrValue      string
	Disabled       *bool
	After          string // the UsernameKey of the previous page's last user; "" for the first page
	Limit          int    // 0 means 50
}

// SearchUsers returns up to f.Limit users matching f, ordered by
// UsernameKey, after f.After. Keyset pagination over a unique key: a user
// present for the whole walk is seen exactly once, however many users are
// created or deleted meanwhile.
func (d *DB) SearchUsers(ctx context.Context, f UserFilter) ([]User, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.UsernamePrefix != "" {
		add(`username_key LIKE ? ESCAPE '\'`, escapeLike(UsernameKey(f.UsernamePrefix))+"%")
	}
	if f.EmailPrefix != "" {
		add(`email_key LIKE ? ESCAPE '\'`, escapeLike(EmailKey(f.EmailPrefix))+"%")
	}
	if f.Role != "" {
		if d.dialect == Postgres {
			add(`roles @> jsonb_build_array(?::text)`, f.Role)
		} else {
			add(`EXISTS (SELECT 1 FROM json_each(users.roles) WHERE value = ?)`, f.Role)
		}
	}
	if f.AttrKey != "" {
		if d.dialect == Postgres {
			add(`attributes ->> ?::text = ?`, f.AttrKey, f.AttrValue)
		} else {
			// json_each gives booleans as 1/0; spell them as JSON does, as
			// PostgreSQL's ->> does.
			add(`EXISTS (SELECT 1 FROM json_each(users.attributes) WHERE key = ? AND
				(CASE type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(value AS TEXT) END) = ?)`,
				f.AttrKey, f.AttrValue)
		}
	}
	if f.Disabled != nil {
		add(`disabled = ?`, *f.Disabled)
	}
	if f.After != "" {
		add(`username_key > ?`, f.After)
	}
	q := `SELECT ` + userColumns + ` FROM users`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	q += fmt.Sprintf(` ORDER BY username_key LIMIT %d`, limit)
	var out []User
	if err := d.sel(ctx, d.r, &out, q, args...); err != nil {
		return nil, fmt.Errorf("search users: %w", err)
	}
	return out, nil
}
