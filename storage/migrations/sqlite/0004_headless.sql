-- +goose Up

-- A user's phone number on file (for SMS codes) and the second factor they
-- prefer when they have several.
ALTER TABLE users ADD COLUMN phone TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN preferred_method TEXT NOT NULL DEFAULT '';

-- A login transaction's one-time code, for methods that send one (EMAIL,
-- SMS): only its keyed MAC is kept, bound to the transaction by living on
-- it; a new code replaces the old. A TOTP secret awaiting its first code
-- (TOTP_ENROLL) is kept sealed beside it.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt.
CREATE TABLE login_transactions_v4 (
    id              TEXT PRIMARY KEY,
    auth_request_id TEXT REFERENCES auth_requests (id) ON DELETE CASCADE,
    client_id       TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    binding_hash    BLOB,
    method          TEXT NOT NULL,
    otp_failures    INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL CHECK (state IN ('otp', 'enroll', 'done', 'dead')),
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    code_mac        BLOB,
    code_expires_at TIMESTAMP,
    code_sent_at    TIMESTAMP,
    pending_secret  BLOB
);
INSERT INTO login_transactions_v4 (id, auth_request_id, client_id, user_id, binding_hash, method, otp_failures, state,
    created_at, expires_at)
    SELECT id, auth_request_id, client_id, user_id, binding_hash, method, otp_failures, state, created_at, expires_at
    FROM login_transactions;
DROP TABLE login_transactions;
ALTER TABLE login_transactions_v4 RENAME TO login_transactions;
CREATE INDEX login_transactions_expires_at ON login_transactions (expires_at);

-- Recovery codes: keyed MACs, each usable once.
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_mac   BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    PRIMARY KEY (user_id, code_mac)
);

-- A TOTP secret a signed-in user is adding through self-service, until its
-- first code confirms it.
CREATE TABLE pending_totp (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed BLOB NOT NULL,
    expires_at    TIMESTAMP NOT NULL
);

-- The direct mode's API key: a lookup ID and the MAC of its secret part.
ALTER TABLE clients ADD COLUMN api_key_id TEXT;
ALTER TABLE clients ADD COLUMN api_key_mac BLOB;
CREATE UNIQUE INDEX clients_api_key_id ON clients (api_key_id);
-- What a user without a second factor gets after the password.
ALTER TABLE clients ADD COLUMN enrollment_policy TEXT NOT NULL DEFAULT 'refuse';

-- When the user proved the factors behind an access token: self-service
-- second-factor changes want a recent sign-in.
ALTER TABLE access_tokens ADD COLUMN auth_time TIMESTAMP;

-- A session started by the JSON API reaches the browser through a one-time
-- ticket, redeemed on a top-level visit to stile (a cross-site call cannot
-- set stile's cookie).
ALTER TABLE sessions ADD COLUMN handover_mac BLOB;
ALTER TABLE sessions ADD COLUMN handover_expires_at TIMESTAMP;

-- +goose Down
ALTER TABLE sessions DROP COLUMN handover_expires_at;
ALTER TABLE sessions DROP COLUMN handover_mac;
ALTER TABLE access_tokens DROP COLUMN auth_time;
ALTER TABLE clients DROP COLUMN enrollment_policy;
DROP INDEX clients_api_key_id;
ALTER TABLE clients DROP COLUMN api_key_mac;
ALTER TABLE clients DROP COLUMN api_key_id;
DROP TABLE pending_totp;
DROP TABLE recovery_codes;
ALTER TABLE login_transactions DROP COLUMN pending_secret;
ALTER TABLE login_transactions DROP COLUMN code_sent_at;
ALTER TABLE login_transactions DROP COLUMN code_expires_at;
ALTER TABLE login_transactions DROP COLUMN code_mac;
ALTER TABLE users DROP COLUMN preferred_method;
ALTER TABLE users DROP COLUMN phone;
