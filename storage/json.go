package storage

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"slices"
)

// Strings is a list stored as a JSON array (JSONB on PostgreSQL, TEXT on
// SQLite). A nil list is stored as [].
type Strings []string

// Value implements driver.Valuer.
func (s Strings) Value() (driver.Value, error) {
	if s == nil {
		return "[]", nil
	}
	b, err := json.Marshal([]string(s))
	return string(b), err
}

// Scan implements sql.Scanner.
func (s *Strings) Scan(src any) error { return scanJSON(src, (*[]string)(s)) }

// Contains reports whether v is in the list.
func (s Strings) Contains(v string) bool { return slices.Contains(s, v) }

// Attributes is a user's free-form profile data, stored as a JSON object.
type Attributes map[string]any

// Value implements driver.Valuer.
func (a Attributes) Value() (driver.Value, error) {
	if a == nil {
		return "{}", nil
	}
	b, err := json.Marshal(map[string]any(a))
	return string(b), err
}

// Scan implements sql.Scanner.
func (a *Attributes) Scan(src any) error { return scanJSON(src, (*map[string]any)(a)) }

func scanJSON(src, dst any) error {
	var b []byte
	switch v := src.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	case nil:
		return nil
	default:
		return fmt.Errorf("scan JSON column: unexpected %T", src)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("scan JSON column: %w", err)
	}
	return nil
}
