-- +goose Up

-- The scopes the operator lets a client be granted by client_credentials
-- (e.g. stile:admin): none unless listed.
ALTER TABLE clients ADD COLUMN allowed_scopes TEXT NOT NULL DEFAULT '[]';

-- A client_credentials token belongs to its client and to no user: its
-- user_id is NULL (its sub is the client ID). SQLite cannot drop a NOT NULL
-- constraint, so the table is rebuilt (nothing references it) with the
-- same columns and indexes.
CREATE TABLE access_tokens_new (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id         TEXT REFERENCES users (id) ON DELETE CASCADE,
    auth_request_id TEXT,
    scopes          TEXT NOT NULL DEFAULT '[]',
    audience        TEXT NOT NULL DEFAULT '[]',
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    revoked_at      TIMESTAMP,
    family_id       TEXT,
    session_id      TEXT,
    userinfo_claims TEXT NOT NULL DEFAULT '[]',
    auth_time       TIMESTAMP
);
INSERT INTO access_tokens_new (id, client_id, user_id, auth_request_id, scopes, audience, created_at, expires_at,
    revoked_at, family_id, session_id, userinfo_claims, auth_time)
SELECT id, client_id, user_id, auth_request_id, scopes, audience, created_at, expires_at,
    revoked_at, family_id, session_id, userinfo_claims, auth_time FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE INDEX access_tokens_auth_request_id ON access_tokens (auth_request_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);
CREATE INDEX access_tokens_family_id ON access_tokens (family_id);
CREATE INDEX access_tokens_user_id ON access_tokens (user_id);

-- +goose Down
CREATE TABLE access_tokens_old (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_request_id TEXT,
    scopes          TEXT NOT NULL DEFAULT '[]',
    audience        TEXT NOT NULL DEFAULT '[]',
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    revoked_at      TIMESTAMP,
    family_id       TEXT,
    session_id      TEXT,
    userinfo_claims TEXT NOT NULL DEFAULT '[]',
    auth_time       TIMESTAMP
);
INSERT INTO access_tokens_old (id, client_id, user_id, auth_request_id, scopes, audience, created_at, expires_at,
    revoked_at, family_id, session_id, userinfo_claims, auth_time)
SELECT id, client_id, user_id, auth_request_id, scopes, audience, created_at, expires_at,
    revoked_at, family_id, session_id, userinfo_claims, auth_time FROM access_tokens WHERE user_id IS NOT NULL;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_old RENAME TO access_tokens;
CREATE INDEX access_tokens_auth_request_id ON access_tokens (auth_request_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);
CREATE INDEX access_tokens_family_id ON access_tokens (family_id);
CREATE INDEX access_tokens_user_id ON access_tokens (user_id);
ALTER TABLE clients DROP COLUMN allowed_scopes;
