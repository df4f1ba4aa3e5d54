-- +goose Up

-- Facts about the installation itself, such as the master key's check value.
CREATE TABLE stile_meta (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE, -- case-folded, NFKC-normalised username
    email         TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL DEFAULT '', -- argon2id PHC string; empty: cannot sign in
    roles         JSONB NOT NULL DEFAULT '[]',
    attributes    JSONB NOT NULL DEFAULT '{}',
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE totp_enrolments (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed BYTEA NOT NULL,           -- AES-GCM, AAD bound to table, column and user
    last_step     BIGINT NOT NULL DEFAULT 0, -- last accepted RFC 6238 time step
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL DEFAULT '',
    type                      TEXT NOT NULL CHECK (type IN ('web', 'spa', 'native')),
    auth_method               TEXT NOT NULL CHECK (auth_method IN ('client_secret_basic', 'client_secret_post', 'none')),
    secret_hash               BYTEA,
    grant_types               JSONB NOT NULL DEFAULT '[]',
    redirect_uris             JSONB NOT NULL DEFAULT '[]',
    post_logout_redirect_uris JSONB NOT NULL DEFAULT '[]',
    web_origins               JSONB NOT NULL DEFAULT '[]',
    require_pkce              BOOLEAN NOT NULL DEFAULT TRUE,
    access_token_format       TEXT NOT NULL DEFAULT 'jwt' CHECK (access_token_format IN ('jwt', 'opaque')),
    audiences                 JSONB NOT NULL DEFAULT '[]',
    access_token_lifetime     BIGINT NOT NULL DEFAULT 0, -- seconds; 0: server default
    id_token_lifetime         BIGINT NOT NULL DEFAULT 0,
    first_party               BOOLEAN NOT NULL DEFAULT FALSE,
    login_url                 TEXT NOT NULL DEFAULT '',
    headless                  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at                TIMESTAMPTZ NOT NULL,
    updated_at                TIMESTAMPTZ NOT NULL
);

-- An OpenID authorization request and, once a login completes, its outcome.
CREATE TABLE auth_requests (
    id                    TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri          TEXT NOT NULL,
    scopes                JSONB NOT NULL DEFAULT '[]',
    state                 TEXT NOT NULL DEFAULT '',
    nonce                 TEXT NOT NULL DEFAULT '',
    response_type         TEXT NOT NULL,
    response_mode         TEXT NOT NULL DEFAULT '',
    code_challenge        TEXT NOT NULL DEFAULT '',
    code_challenge_method TEXT NOT NULL DEFAULT '',
    prompt                JSONB NOT NULL DEFAULT '[]',
    max_age               BIGINT,
    login_hint            TEXT NOT NULL DEFAULT '',
    ui_locales            TEXT NOT NULL DEFAULT '',
    acr_values            TEXT NOT NULL DEFAULT '',
    hint_subject          TEXT NOT NULL DEFAULT '', -- sub of a valid id_token_hint
    binding_hash          BYTEA,                    -- MAC of the browser cookie that owns it
    user_id               TEXT REFERENCES users (id) ON DELETE CASCADE,
    auth_time             TIMESTAMPTZ,
    amr                   JSONB NOT NULL DEFAULT '[]',
    done                  BOOLEAN NOT NULL DEFAULT FALSE,
    error_code            TEXT NOT NULL DEFAULT '', -- an OAuth error the login ended with
    callback_at           TIMESTAMPTZ,              -- the callback answers once
    code_hash             BYTEA UNIQUE,
    code_expires_at       TIMESTAMPTZ,
    code_redeemed_at      TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    expires_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

-- One attempt at the second step, after a password was accepted.
CREATE TABLE login_transactions (
    id              TEXT PRIMARY KEY,
    auth_request_id TEXT REFERENCES auth_requests (id) ON DELETE CASCADE,
    client_id       TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    binding_hash    BYTEA,
    method          TEXT NOT NULL,
    otp_failures    INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL CHECK (state IN ('otp', 'done', 'dead')),
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_transactions_expires_at ON login_transactions (expires_at);

CREATE TABLE access_tokens (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_request_id TEXT,
    scopes          JSONB NOT NULL DEFAULT '[]',
    audience        JSONB NOT NULL DEFAULT '[]',
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX access_tokens_auth_request_id ON access_tokens (auth_request_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

CREATE TABLE signing_keys (
    id             TEXT PRIMARY KEY, -- the JWS kid
    algorithm      TEXT NOT NULL,
    private_sealed BYTEA NOT NULL,
    public_jwk     TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    created_at     TIMESTAMPTZ NOT NULL,
    activated_at   TIMESTAMPTZ,
    retired_at     TIMESTAMPTZ
);
-- Exactly one key signs: two instances racing to create it cannot both win.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';

-- Consecutive failed sign-in attempts per account ("user:<id>") or per unknown
-- username ("name:<hmac>"), shared by every instance.
CREATE TABLE failed_attempts (
    subject         TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    last_failure_at TIMESTAMPTZ NOT NULL,
    locked_until    TIMESTAMPTZ
);

-- +goose Down
DROP TABLE failed_attempts;
DROP TABLE signing_keys;
DROP TABLE access_tokens;
DROP TABLE login_transactions;
DROP TABLE auth_requests;
DROP TABLE clients;
DROP TABLE totp_enrolments;
DROP TABLE users;
DROP TABLE stile_meta;
