-- +goose Up

-- Every change to an app, by whatever means (the store, a migration, SQL
-- by hand), notifies the replicas that Watch, in the change's own
-- transaction, so that a replica hears of it once it is there to read.
-- The payload is ["schema","team","id"], or ["schema"] for a TRUNCATE: a
-- channel is the database's, and a store hears the changes of every
-- schema's apps. (A session with session_replication_role = replica fires
-- no trigger; WatchedAppTTL bounds what its changes cost.)
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION chatgate_chat_apps_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('chatgate_chat_apps', json_build_array(TG_TABLE_SCHEMA)::text);
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('chatgate_chat_apps', json_build_array(TG_TABLE_SCHEMA, OLD.team_id, OLD.id)::text);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('chatgate_chat_apps', json_build_array(TG_TABLE_SCHEMA, NEW.team_id, NEW.id)::text);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
DROP TRIGGER IF EXISTS chat_apps_notify ON chat_apps;
CREATE TRIGGER chat_apps_notify AFTER INSERT OR UPDATE OR DELETE ON chat_apps
    FOR EACH ROW EXECUTE FUNCTION chatgate_chat_apps_notify();
DROP TRIGGER IF EXISTS chat_apps_notify_truncate ON chat_apps;
CREATE TRIGGER chat_apps_notify_truncate AFTER TRUNCATE ON chat_apps
    FOR EACH STATEMENT EXECUTE FUNCTION chatgate_chat_apps_notify();

-- +goose Down
DROP TRIGGER chat_apps_notify_truncate ON chat_apps;
DROP TRIGGER chat_apps_notify ON chat_apps;
DROP FUNCTION chatgate_chat_apps_notify();
