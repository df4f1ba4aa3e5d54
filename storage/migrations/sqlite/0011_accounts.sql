-- +goose Up

-- The management API (issue 11): an email address belongs to one account
-- (compared ignoring case), and every change to a user bumps its version,
-- the API's ETag. Before upgrading a database where two accounts share an
-- address, give one of them another: this migration refuses duplicates.
ALTER TABLE users ADD COLUMN email_key TEXT NOT NULL DEFAULT '';
UPDATE users SET email_key = lower(trim(email));
CREATE UNIQUE INDEX users_email_key ON users (email_key) WHERE email_key <> '';
ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE users DROP COLUMN version;
DROP INDEX users_email_key;
ALTER TABLE users DROP COLUMN email_key;
