-- +goose Up

-- Several signing algorithms at once: one active key per algorithm (the
-- default's, and one for each algorithm a client pins), at most one next key
-- per algorithm, and exactly one active key that is the default. A next key
-- marked default becomes the default when it starts signing.
ALTER TABLE signing_keys ADD COLUMN is_default BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE signing_keys SET is_default = TRUE WHERE state IN ('active', 'next');
DROP INDEX signing_keys_one_active;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (algorithm) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (algorithm) WHERE state = 'next';
CREATE UNIQUE INDEX signing_keys_one_default ON signing_keys (is_default) WHERE state = 'active' AND is_default;

-- The algorithm a client's ID tokens (and JWT access tokens) are signed
-- with (id_token_signed_response_alg); empty: the server's default.
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE clients DROP COLUMN id_token_signed_response_alg;
DROP INDEX signing_keys_one_default;
DROP INDEX signing_keys_one_next;
DROP INDEX signing_keys_one_active;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';
ALTER TABLE signing_keys DROP COLUMN is_default;
