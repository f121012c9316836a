-- +goose Up

-- What updateHistory sets (custom title, pin) and the end user a chat
-- belongs to are columns, not doc: AppendTurn rewrites doc with every
-- turn, and must not undo a rename made while the turn ran. The share
-- link is a column too, for getHistories' and clearHistories' source.
-- (doc->>'...' cannot be used: it fails on a doc that holds a NUL.)
ALTER TABLE chat_conversations
    ADD COLUMN top          boolean NOT NULL DEFAULT false,
    ADD COLUMN custom_title text NOT NULL DEFAULT '',
    ADD COLUMN custom_uid   text COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN share_id     text COLLATE "C" NOT NULL DEFAULT '';
-- Conversations of share-link visitors have chatIds share:<link>:...; the
-- link id is an id (no quote or backslash) in the doc's text.
UPDATE chat_conversations SET share_id = coalesce(substring(doc::text from '"shareId":"([^"\\]*)"'), '')
WHERE chat_id LIKE 'share:%';

-- Lists put pinned chats first.
DROP INDEX chat_conversations_recent;
CREATE INDEX chat_conversations_recent ON chat_conversations
    (team_id, app_id, top DESC, update_time DESC, update_ns DESC, chat_id);

-- Records are found by dataId (getResData, item/delete, feedback). Docs
-- are written dataId first, and dataIds written so far are ids.
ALTER TABLE chat_records ADD COLUMN data_id text COLLATE "C" NOT NULL DEFAULT '';
UPDATE chat_records SET data_id = coalesce(substring(doc::text from '^\{"dataId":"([^"\\]*)"'), '');
CREATE INDEX chat_records_data_id ON chat_records (conv_id, data_id);

-- +goose Down
DROP INDEX chat_records_data_id;
ALTER TABLE chat_records DROP COLUMN data_id;
DROP INDEX chat_conversations_recent;
CREATE INDEX chat_conversations_recent ON chat_conversations
    (team_id, app_id, update_time DESC, update_ns DESC, chat_id);
ALTER TABLE chat_conversations DROP COLUMN top, DROP COLUMN custom_title, DROP COLUMN custom_uid, DROP COLUMN share_id;
