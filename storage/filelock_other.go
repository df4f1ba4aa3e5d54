//go:build !unix

package storage

import (
	"context"
	"database/sql"
)

// fileLocker is a no-op where flock(2) does not exist: there, run one
// instance at a time against a SQLite file (or use PostgreSQL).
type fileLocker struct{ path string }

func (l *fileLocker) Lock(context.Context, *sql.DB) error   { return nil }
func (l *fileLocker) Unlock(context.Context, *sql.DB) error { return nil }
