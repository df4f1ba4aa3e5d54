-- +goose Up

-- An enrolment policy per role: what a user without a second factor gets
-- after the password when they hold the role, in place of the client's
-- policy (the strictest, when several of their roles have one).
CREATE TABLE role_policies (
    role              TEXT PRIMARY KEY,
    enrollment_policy TEXT NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE role_policies;
