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
-- account's.
ALTER TABLE login_transactions ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE login_transactions ADD COLUMN passwordless BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE login_transactions ADD COLUMN subject TEXT NOT NULL DEFAULT '';

-- +goose Down
DELETE FROM login_transactions WHERE user_id IS NULL;
ALTER TABLE login_transactions DROP COLUMN subject;
ALTER TABLE login_transactions DROP COLUMN passwordless;
ALTER TABLE login_transactions ALTER COLUMN user_id SET NOT NULL;
DROP INDEX users_phone_key;
ALTER TABLE users DROP COLUMN phone_key;
