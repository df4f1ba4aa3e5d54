-- +goose Up

-- The audit trail: every management action and every sign-in outcome
-- (storage/event.go). Rows name users and clients by ID without foreign
-- keys, so the trail outlives what it is about; it never holds a secret.
CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,       -- the cursor: ascending in insertion order
    at           TIMESTAMPTZ NOT NULL,
    type         TEXT NOT NULL,               -- e.g. user.created, login.password
    outcome      TEXT NOT NULL DEFAULT 'success' CHECK (outcome IN ('success', 'failure')),
    reason       TEXT NOT NULL DEFAULT '',    -- a stable code for a failure, e.g. invalid_credentials
    actor_user   TEXT NOT NULL DEFAULT '',    -- the user who acted (sign-in, self-service)
    actor_client TEXT NOT NULL DEFAULT '',    -- the client that acted (management API) or was signed in to
    actor        TEXT NOT NULL DEFAULT '',    -- an operator at the CLI: "cli:<os user>"
    user_id      TEXT NOT NULL DEFAULT '',    -- the user the event is about
    remote       TEXT NOT NULL DEFAULT '',    -- the caller's address
    detail       JSONB NOT NULL DEFAULT '{}'  -- what changed (field names, never values of secrets)
);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_user ON events (user_id, id) WHERE user_id <> '';
CREATE INDEX events_client ON events (actor_client, id) WHERE actor_client <> '';
CREATE INDEX events_type ON events (type, id);

-- +goose Down
DROP TABLE events;
