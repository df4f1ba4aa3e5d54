-- +goose Up

-- Self-service sign-up (issue 12): a sign-up waits here, bound to the
-- browser that started it, until its email address is proven and its
-- second factor set up; only then does it become a user. Nothing in this
-- table is an account: the password is an argon2id hash, the code a keyed
-- MAC, the pending TOTP secret sealed to the row.
CREATE TABLE signups (
    id              TEXT PRIMARY KEY,
    auth_request_id TEXT NOT NULL REFERENCES auth_requests (id) ON DELETE CASCADE,
    client_id       TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    door            TEXT NOT NULL CHECK (door IN ('pages', 'api')),
    binding_hash    BLOB NOT NULL,
    username        TEXT NOT NULL,
    email           TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    method          TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL CHECK (state IN ('code', 'username', 'enroll', 'creating', 'dead')),
    failures        INTEGER NOT NULL DEFAULT 0,
    code_mac        BLOB,
    code_expires_at TIMESTAMP,
    code_sent_at    TIMESTAMP,
    pending_secret  BLOB,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL
);
CREATE INDEX signups_expires_at ON signups (expires_at);

-- +goose Down
DROP TABLE signups;
