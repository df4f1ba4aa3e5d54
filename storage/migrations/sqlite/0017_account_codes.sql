-- +goose Up

-- Codes the account page sends (issue 12): a step-up code to the address
-- or number on file, or the code that confirms a new email address. One
-- per user and purpose; a new one replaces the last. Stored as a keyed MAC,
-- with the address it went to (target), a bounded number of wrong tries,
-- and a short life.
CREATE TABLE account_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    target     TEXT NOT NULL DEFAULT '',
    code_mac   BLOB NOT NULL,
    tries      INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, purpose)
);
CREATE INDEX account_codes_expires_at ON account_codes (expires_at);

-- +goose Down
DROP TABLE account_codes;
