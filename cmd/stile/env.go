package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	osuser "os/user"

	"github.com/stile-id/stile/account"
	"github.com/stile-id/stile/login"

	"github.com/stile-id/stile/keys"
	"github.com/stile-id/stile/storage"
)

// environment is an open database with its master key.
type environment struct {
	db     *storage.DB
	master *keys.Master
	sealer *keys.Sealer
	log    *slog.Logger
}

func (e *environment) Close() { e.db.Close() }

// withUser opens the environment and finds the user named by ref (a
// username or a uid) for fn.
func (c *cli) withUser(ctx context.Context, ref string, fn func(*environment, *storage.User) error) error {
	return c.withEnv(ctx, func(env *environment) error {
		u, err := env.accounts("").Find(ctx, ref)
		if errors.Is(err, account.ErrNotFound) {
			return fmt.Errorf("no user %q", ref)
		}
		if err != nil {
			return err
		}
		return fn(env, u)
	})
}

// accounts is the account service as the CLI uses it: passwords hashed
// here, enrolment links and authenticator labels built on issuer.
func (e *environment) accounts(issuer string) *account.Service {
	return account.New(account.Config{DB: e.db, Hasher: login.DefaultArgon2id, Sealer: e.sealer,
		RecoveryKey: codeKeys(e.master).Recovery, Issuer: issuer, IssuerLabel: issuerLabel(issuer), Log: e.log})
}

// operator is who acts at the CLI, for the audit trail: the OS user.
func operator() account.Actor {
	name := os.Getenv("USER")
	if u, err := osuser.Current(); err == nil {
		name = u.Username
	}
	return account.Actor{Operator: "cli:" + name}
}

// withEnv opens the environment, runs fn in it and closes it.
func (c *cli) withEnv(ctx context.Context, fn func(*environment) error) error {
	env, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer env.Close()
	return fn(env)
}

func (c *cli) logger() *slog.Logger {
	return newLogger(c.stderr, c.logFormat)
}

// open connects to the database, brings its schema up to date (under a
// lock, so instances starting together are safe) and loads the master key.
func (c *cli) open(ctx context.Context, opts ...storage.Option) (*environment, error) {
	log := c.logger()
	db, err := storage.Open(ctx, c.database, opts...)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, log); err != nil {
		db.Close()
		return nil, err
	}
	master, err := c.masterKey(ctx, db, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &environment{db: db, master: master, sealer: keys.NewSealer(master), log: log}, nil
}

// masterKey loads the master key and checks it against the database. With
// SQLite a missing key is generated on first start, next to the database
// file; a database that already has a key never gets a new one.
func (c *cli) masterKey(ctx context.Context, db *storage.DB, log *slog.Logger) (*keys.Master, error) {
	path := c.secretFile
	if path == "" {
		if db.Dialect() != storage.SQLite {
			return nil, errors.New("--secret-file (or STILE_SECRET_FILE) is required with PostgreSQL; create the key once " +
				"with: (umask 077; openssl rand -base64 32 > stile.key) and give every instance the same file")
		}
		path = db.Path() + ".key"
	}
	m, err := keys.LoadMaster(path)
	if errors.Is(err, keys.ErrNoMasterFile) {
		m, err = c.firstMasterKey(ctx, db, path, log)
	}
	if err != nil {
		return nil, fmt.Errorf("--secret-file: %w", err)
	}
	if err := m.Check(ctx, db); err != nil {
		if errors.Is(err, keys.ErrWrongMaster) {
			return nil, fmt.Errorf("--secret-file %s: %w; use the key file this database was set up with", path, err)
		}
		if errors.Is(err, keys.ErrRetiredMaster) {
			return nil, fmt.Errorf("--secret-file %s: %w; use the new key file that replaced it", path, err)
		}
		return nil, err
	}
	return m, nil
}

func (c *cli) firstMasterKey(ctx context.Context, db *storage.DB, path string, log *slog.Logger) (*keys.Master, error) {
	has, err := keys.HasCheck(ctx, db)
	if err != nil {
		return nil, err
	}
	if has {
		return nil, fmt.Errorf("%s does not exist, but this database was set up with a master key: restore the file from your backup", path)
	}
	if db.Dialect() != storage.SQLite {
		return nil, fmt.Errorf("%s does not exist; create it with: (umask 077; openssl rand -base64 32 > %s)", path, path)
	}
	m, err := keys.GenerateMaster(path)
	if err != nil {
		return nil, err
	}
	log.Warn("created a new master key: back it up, separately from the database", "file", path)
	return m, nil
}

// audit records an operator's action on something other than a user (a
// client, a key, a policy) in the audit trail; a failure to record is
// logged, not fatal.
func (e *environment) audit(ctx context.Context, typ string, detail storage.Attributes) {
	a := operator()
	ev := &storage.Event{Type: typ, Actor: a.Operator, Detail: detail}
	if err := e.db.RecordEvent(ctx, ev); err != nil {
		e.log.Error("audit event not recorded", "type", typ, "err", err)
	}
}
