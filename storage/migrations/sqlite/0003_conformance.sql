-- +goose Up

-- An operator may exempt a dedicated test account from the second factor,
-- for automated conformance runs that cannot read an authenticator app.
-- It is shown by `stile user show` and logged at every use.
ALTER TABLE users ADD COLUMN otp_exempt BOOLEAN NOT NULL DEFAULT FALSE;

-- Claims asked for by name with the claims request parameter (OpenID
-- Connect Core §5.5), kept with the request and the tokens it yields.
ALTER TABLE auth_requests ADD COLUMN userinfo_claims TEXT NOT NULL DEFAULT '[]';
ALTER TABLE auth_requests ADD COLUMN id_token_claims TEXT NOT NULL DEFAULT '[]';
ALTER TABLE access_tokens ADD COLUMN userinfo_claims TEXT NOT NULL DEFAULT '[]';
ALTER TABLE refresh_tokens ADD COLUMN userinfo_claims TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE refresh_tokens DROP COLUMN userinfo_claims;
ALTER TABLE access_tokens DROP COLUMN userinfo_claims;
ALTER TABLE auth_requests DROP COLUMN id_token_claims;
ALTER TABLE auth_requests DROP COLUMN userinfo_claims;
ALTER TABLE users DROP COLUMN otp_exempt;
