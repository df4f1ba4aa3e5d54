-- +goose Up

-- Each instance keeps clients and signing keys in memory (storage/cache.go).
-- Every change to either table bumps cache_version, so a process that did
-- not make the change (the CLI beside a running server) is seen when the
-- server next checks the version; a change made through the server's own
-- store drops its cache at once.
CREATE TABLE cache_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO cache_version (id, version) VALUES (1, 0);

-- +goose StatementBegin
CREATE TRIGGER stile_cache_clients_insert AFTER INSERT ON clients
BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER stile_cache_clients_update AFTER UPDATE ON clients
BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER stile_cache_clients_delete AFTER DELETE ON clients
BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER stile_cache_keys_insert AFTER INSERT ON signing_keys
BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER stile_cache_keys_update AFTER UPDATE ON signing_keys
BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER stile_cache_keys_delete AFTER DELETE ON signing_keys
BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER stile_cache_keys_delete;
DROP TRIGGER stile_cache_keys_update;
DROP TRIGGER stile_cache_keys_insert;
DROP TRIGGER stile_cache_clients_delete;
DROP TRIGGER stile_cache_clients_update;
DROP TRIGGER stile_cache_clients_insert;
DROP TABLE cache_version;
