-- +goose Up

-- Each instance keeps clients and signing keys in memory (storage/cache.go).
-- Every change to either table bumps cache_version and notifies the channel
-- stile_cache with '<table>:<id>': a listening instance drops what it holds
-- at once, and one whose listener is down, or that never listens (a CLI
-- process, SQLite), sees the version move when it next checks.
CREATE TABLE cache_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO cache_version (id, version) VALUES (1, 0);

-- +goose StatementBegin
CREATE FUNCTION stile_cache_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_id TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_id := OLD.id;
    ELSE
        row_id := NEW.id;
    END IF;
    UPDATE cache_version SET version = version + 1 WHERE id = 1;
    PERFORM pg_notify('stile_cache', TG_TABLE_NAME || ':' || row_id);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER stile_cache_clients AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION stile_cache_changed();
CREATE TRIGGER stile_cache_signing_keys AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION stile_cache_changed();

-- +goose Down
DROP TRIGGER stile_cache_signing_keys ON signing_keys;
DROP TRIGGER stile_cache_clients ON clients;
DROP FUNCTION stile_cache_changed();
DROP TABLE cache_version;
