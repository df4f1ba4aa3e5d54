-- +goose Up

-- Fixed-window counters shared by every instance: requests per source
-- address (password and code steps, resends, /authorize, the token
-- endpoint) and codes sent per user and per destination. The key names the
-- limit and its subject ("authorize:addr:192.0.2.1").
CREATE TABLE rate_limits (
    key          TEXT PRIMARY KEY,
    window_start TIMESTAMPTZ NOT NULL,
    hits         INTEGER NOT NULL
);
CREATE INDEX rate_limits_window_start ON rate_limits (window_start);

-- The front door a login transaction belongs to: 'pages' (stile's HTML
-- pages), 'api' (the JSON login API of a client with a login_url) or
-- 'direct' (the direct mode's apiKey). Every other door refuses it.
ALTER TABLE login_transactions ADD COLUMN door TEXT NOT NULL DEFAULT 'pages';

-- The authorization request a refresh-token family was started from: a
-- replayed authorization code revokes the whole grant, refresh tokens too.
ALTER TABLE refresh_tokens ADD COLUMN auth_request_id TEXT;
CREATE INDEX refresh_tokens_auth_request_id ON refresh_tokens (auth_request_id);

-- +goose Down
DROP INDEX refresh_tokens_auth_request_id;
ALTER TABLE refresh_tokens DROP COLUMN auth_request_id;
ALTER TABLE login_transactions DROP COLUMN door;
DROP TABLE rate_limits;
