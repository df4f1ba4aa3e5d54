-- +goose Up

-- Forgot password (issue 12): a reset link sent to the address on file.
-- Only the token's keyed MAC is stored. The first browser to open the link
-- owns it (binding_hash); the user then proves a second factor
-- (factor_at), then chooses a password (used_at). code_mac holds a code
-- texted for the link; failures counts wrong codes, which end the link.
CREATE TABLE password_resets (
    id              TEXT PRIMARY KEY,
    token_mac       BLOB NOT NULL UNIQUE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_request_id TEXT, -- the sign-in the user came from, to go back to
    binding_hash    BLOB,
    code_mac        BLOB,
    code_expires_at TIMESTAMP,
    code_sent_at    TIMESTAMP,
    failures        INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    factor_at       TIMESTAMP,
    used_at         TIMESTAMP
);
CREATE INDEX password_resets_user_id ON password_resets (user_id);
CREATE INDEX password_resets_expires_at ON password_resets (expires_at);

-- +goose Down
DROP TABLE password_resets;
