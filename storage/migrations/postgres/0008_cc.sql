-- +goose Up

-- The scopes the operator lets a client be granted by client_credentials
-- (e.g. stile:admin): none unless listed.
ALTER TABLE clients ADD COLUMN allowed_scopes JSONB NOT NULL DEFAULT '[]';

-- A client_credentials token belongs to its client and to no user: its
-- user_id is NULL (its sub is the client ID). Every other access token
-- still names its user.
ALTER TABLE access_tokens ALTER COLUMN user_id DROP NOT NULL;

-- +goose Down
DELETE FROM access_tokens WHERE user_id IS NULL;
ALTER TABLE access_tokens ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE clients DROP COLUMN allowed_scopes;
