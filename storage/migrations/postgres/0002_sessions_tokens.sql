-- +goose Up

-- SSO sessions. The browser holds a random value; the row holds its MAC
-- (cookie_hash), so a copy of the database cannot be replayed as a cookie.
-- id is public: it travels as the ID token's sid.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    cookie_hash  BYTEA NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    TIMESTAMPTZ NOT NULL,
    amr          JSONB NOT NULL DEFAULT '[]',
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL, -- absolute lifetime
    ended_at     TIMESTAMPTZ
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

ALTER TABLE auth_requests ADD COLUMN session_id TEXT;

-- What a user allowed a client, remembered until withdrawn.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     JSONB NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Refresh tokens rotate: each use replaces the token with a new one of the
-- same family. A token used again after the grace window revokes the family.
CREATE TABLE refresh_tokens (
    id                TEXT PRIMARY KEY,
    token_hash        BYTEA NOT NULL UNIQUE,
    family_id         TEXT NOT NULL,
    client_id         TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id        TEXT,
    scopes            JSONB NOT NULL DEFAULT '[]',
    audience          JSONB NOT NULL DEFAULT '[]',
    auth_time         TIMESTAMPTZ NOT NULL,
    amr               JSONB NOT NULL DEFAULT '[]',
    created_at        TIMESTAMPTZ NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL, -- idle: this token unused for too long
    family_expires_at TIMESTAMPTZ NOT NULL, -- absolute: the family since the login
    rotated_at        TIMESTAMPTZ,
    revoked_at        TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_family_expires_at ON refresh_tokens (family_expires_at);

ALTER TABLE access_tokens ADD COLUMN family_id TEXT;
ALTER TABLE access_tokens ADD COLUMN session_id TEXT;
CREATE INDEX access_tokens_family_id ON access_tokens (family_id);
CREATE INDEX access_tokens_user_id ON access_tokens (user_id);

ALTER TABLE clients ADD COLUMN refresh_token_idle BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN refresh_token_absolute BIGINT NOT NULL DEFAULT 0;

-- Key rotation: a next key is published at once and signs from activate_after;
-- a retired key stays published until every token it signed has expired.
ALTER TABLE signing_keys ADD COLUMN activate_after TIMESTAMPTZ;
ALTER TABLE signing_keys ADD COLUMN publish_until TIMESTAMPTZ;

-- Single-use enrolment links an operator hands to a user.
CREATE TABLE enrollment_links (
    id             TEXT PRIMARY KEY,
    token_hash     BYTEA NOT NULL UNIQUE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    binding_hash   BYTEA, -- the browser that proved the password
    secret_sealed  BYTEA, -- the secret shown to that browser, until confirmed
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ
);
CREATE INDEX enrollment_links_expires_at ON enrollment_links (expires_at);

-- +goose Down
DROP TABLE enrollment_links;
ALTER TABLE signing_keys DROP COLUMN publish_until;
ALTER TABLE signing_keys DROP COLUMN activate_after;
ALTER TABLE clients DROP COLUMN refresh_token_absolute;
ALTER TABLE clients DROP COLUMN refresh_token_idle;
DROP INDEX access_tokens_user_id;
DROP INDEX access_tokens_family_id;
ALTER TABLE access_tokens DROP COLUMN session_id;
ALTER TABLE access_tokens DROP COLUMN family_id;
DROP TABLE refresh_tokens;
DROP TABLE consents;
ALTER TABLE auth_requests DROP COLUMN session_id;
DROP TABLE sessions;
