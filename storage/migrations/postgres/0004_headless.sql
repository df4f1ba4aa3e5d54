-- +goose Up

-- A user's phone number on file (for SMS codes) and the second factor they
-- prefer when they have several.
ALTER TABLE users ADD COLUMN phone TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN preferred_method TEXT NOT NULL DEFAULT '';

-- A login transaction's one-time code, for methods that send one (EMAIL,
-- SMS): only its keyed MAC is kept, bound to the transaction by living on
-- it; a new code replaces the old. A TOTP secret awaiting its first code
-- (TOTP_ENROLL) is kept sealed beside it.
ALTER TABLE login_transactions ADD COLUMN code_mac BYTEA;
ALTER TABLE login_transactions ADD COLUMN code_expires_at TIMESTAMPTZ;
ALTER TABLE login_transactions ADD COLUMN code_sent_at TIMESTAMPTZ;
ALTER TABLE login_transactions ADD COLUMN pending_secret BYTEA;
ALTER TABLE login_transactions DROP CONSTRAINT login_transactions_state_check;
ALTER TABLE login_transactions ADD CONSTRAINT login_transactions_state_check
    CHECK (state IN ('otp', 'enroll', 'done', 'dead'));

-- Recovery codes: keyed MACs, each usable once.
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_mac   BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_mac)
);

-- A TOTP secret a signed-in user is adding through self-service, until its
-- first code confirms it.
CREATE TABLE pending_totp (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed BYTEA NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);

-- The direct mode's API key: a lookup ID and the MAC of its secret part.
ALTER TABLE clients ADD COLUMN api_key_id TEXT;
ALTER TABLE clients ADD COLUMN api_key_mac BYTEA;
CREATE UNIQUE INDEX clients_api_key_id ON clients (api_key_id);
-- What a user without a second factor gets after the password.
ALTER TABLE clients ADD COLUMN enrollment_policy TEXT NOT NULL DEFAULT 'refuse';

-- When the user proved the factors behind an access token: self-service
-- second-factor changes want a recent sign-in.
ALTER TABLE access_tokens ADD COLUMN auth_time TIMESTAMPTZ;

-- A session started by the JSON API reaches the browser through a one-time
-- ticket, redeemed on a top-level visit to stile (a cross-site call cannot
-- set stile's cookie).
ALTER TABLE sessions ADD COLUMN handover_mac BYTEA;
ALTER TABLE sessions ADD COLUMN handover_expires_at TIMESTAMPTZ;

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
ALTER TABLE login_transactions DROP CONSTRAINT login_transactions_state_check;
ALTER TABLE login_transactions ADD CONSTRAINT login_transactions_state_check CHECK (state IN ('otp', 'done', 'dead'));
ALTER TABLE login_transactions DROP COLUMN pending_secret;
ALTER TABLE login_transactions DROP COLUMN code_sent_at;
ALTER TABLE login_transactions DROP COLUMN code_expires_at;
ALTER TABLE login_transactions DROP COLUMN code_mac;
ALTER TABLE users DROP COLUMN preferred_method;
ALTER TABLE users DROP COLUMN phone;
