-- +goose Up

-- Issue 12's per-client switches, all off by default: the authorization
-- challenge endpoint for first-party apps, passwordless sign-in by code,
-- and self-service sign-up with the roles and attributes a new account
-- starts with.
ALTER TABLE clients ADD COLUMN first_party_app BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE clients ADD COLUMN passwordless BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE clients ADD COLUMN signup BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE clients ADD COLUMN signup_roles JSONB NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN signup_attributes JSONB NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE clients DROP COLUMN signup_attributes;
ALTER TABLE clients DROP COLUMN signup_roles;
ALTER TABLE clients DROP COLUMN signup;
ALTER TABLE clients DROP COLUMN passwordless;
ALTER TABLE clients DROP COLUMN first_party_app;
