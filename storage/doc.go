// Package storage holds stile's domain types and the one SQL store that
// persists them, on PostgreSQL or on an embedded SQLite file.
//
// Everything a login or a token needs lives here, never only in one
// process's memory, so any instance of stile can serve any request.
//
// The store is concrete: *DB, its methods grouped by file (user.go,
// client.go, authrequest.go, …). Consumers declare the few methods they
// need next to where they use them. Queries are written once with `?`
// placeholders and rebound for the dialect; the schema is kept as one set of
// migration files per dialect (migrations/postgres, migrations/sqlite),
// applied under a lock so that instances starting together are safe.
//
// The package imports nothing else of stile's and nothing from the OpenID
// library: it knows rows, not protocols. Secrets reach it already sealed or
// hashed by the caller.
package storage
