-- +goose Up

-- Master-key rotation (issue 13, `stile keys rotate-master`). The current
-- key's check value stays in stile_meta (master_key_check). While a change
-- is open this table holds its two keys, 'old' and 'new', each wrapped
-- (sealed) under the other: an instance holding either key file learns the
-- other from here and opens every value, whichever key sealed it. --finish
-- moves the new key's check value to stile_meta, drops both wrapped copies
-- and keeps the old key as 'retired' (its check value only), so an instance
-- started with the old file is told it was rotated out. The derivation root
-- (stile_meta master_root, sealed under the newest key) is what every MAC
-- and cookie key keeps deriving from, whichever key file is current.
CREATE TABLE master_keys (
    key_id      BYTEA PRIMARY KEY,          -- the first 8 bytes of the check value, in every value it seals
    check_value BYTEA NOT NULL UNIQUE,
    state       TEXT NOT NULL CHECK (state IN ('old', 'new', 'retired')),
    wrapped     BYTEA,                      -- while the change is open: this key, sealed under the other
    created_at  TIMESTAMPTZ NOT NULL,
    retired_at  TIMESTAMPTZ
);
-- One change at a time.
CREATE UNIQUE INDEX master_keys_change ON master_keys (state) WHERE state <> 'retired';

-- +goose Down
DROP TABLE master_keys;
