-- +goose Up

-- Sign-in by phone number (issue 12): a number belongs to one account,
-- compared in E.164 ('+' and digits: what E164 returns, which every write
-- has checked since 0004). Before upgrading a database where two accounts
-- share a number, give one of them another: this migration refuses
-- duplicates.
ALTER TABLE users ADD COLUMN phone_key TEXT NOT NULL DEFAULT '';
UPDATE users SET phone_key = replace(replace(replace(replace(replace(phone, ' ', ''), '.', ''), '-', ''), '(', ''), ')', '');
CREATE UNIQUE INDEX users_phone_key ON users (phone_key) WHERE phone_key <> '';

-- Passwordless sign-in by code: a transaction may be the first and only
-- factor (passwordless), and one opened for an identifier no account
-- matches has no user — it behaves like any other, and no code it is
-- given is right. subject is the throttle's name for the identifier of
-- such a transaction (an HMAC), so its wrong codes count like a known
-- account's. SQLite cannot drop a NOT NULL in place: the table is rebuilt.
CREATE TABLE login_transactions_v15 (
    id              TEXT PRIMARY KEY,
    auth_request_id TEXT REFERENCES auth_requests (id) ON DELETE CASCADE,
    client_id       TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id         TEXT REFERENCES users (id) ON DELETE CASCADE,
    binding_hash    BLOB,
    method          TEXT NOT NULL,
    otp_failures    INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL CHECK (state IN ('otp', 'enroll', 'done', 'dead')),
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    code_mac        BLOB,
    code_expires_at TIMESTAMP,
    code_sent_at    TIMESTAMP,
    pending_secret  BLOB,
    door            TEXT NOT NULL DEFAULT 'pages',
    passwordless    BOOLEAN NOT NULL DEFAULT FALSE,
    subject         TEXT NOT NULL DEFAULT ''
);
INSERT INTO login_transactions_v15 (id, auth_request_id, client_id, user_id, binding_hash, method, otp_failures, state,
    created_at, expires_at, code_mac, code_expires_at, code_sent_at, pending_secret, door)
    SELECT id, auth_request_id, client_id, user_id, binding_hash, method, otp_failures, state,
    created_at, expires_at, code_mac, code_expires_at, code_sent_at, pending_secret, door
    FROM login_transactions;
DROP TABLE login_transactions;
ALTER TABLE login_transactions_v15 RENAME TO login_transactions;
CREATE INDEX login_transactions_expires_at ON login_transactions (expires_at);

-- +goose Down
DELETE FROM login_transactions WHERE user_id IS NULL;
ALTER TABLE login_transactions DROP COLUMN subject;
ALTER TABLE login_transactions DROP COLUMN passwordless;
DROP INDEX users_phone_key;
ALTER TABLE users DROP COLUMN phone_key;
