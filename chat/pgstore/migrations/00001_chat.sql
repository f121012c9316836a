-- +goose Up

-- Ids compare bytewise (COLLATE "C"), as the memory and bbolt stores order
-- them, whatever the database's collation.

-- An app is read and written whole, so it is kept as its JSON document
-- (json, not jsonb: kept verbatim, times to the nanosecond).
CREATE TABLE chat_apps (
    team_id text COLLATE "C" NOT NULL,
    id      text COLLATE "C" NOT NULL,
    doc     json NOT NULL,
    PRIMARY KEY (team_id, id)
);

-- A conversation's keys, times and message count are columns; the rest
-- (title, variables, key, share link, visitor) is its doc. Postgres keeps
-- microseconds: *_ns holds the nanoseconds beyond, so that a time reads
-- back exactly as it was written.
CREATE TABLE chat_conversations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id     text COLLATE "C" NOT NULL,
    app_id      text COLLATE "C" NOT NULL,
    chat_id     text COLLATE "C" NOT NULL,
    create_time timestamptz NOT NULL,
    create_ns   smallint NOT NULL,
    update_time timestamptz NOT NULL,
    update_ns   smallint NOT NULL,
    messages    integer NOT NULL,
    doc         json NOT NULL,
    UNIQUE (team_id, app_id, chat_id)
);
CREATE INDEX chat_conversations_recent ON chat_conversations
    (team_id, app_id, update_time DESC, update_ns DESC, chat_id);

-- A record's seq is its place in the conversation, 0 to messages-1 with no
-- gap: AppendTurn numbers a turn's records while it holds the
-- conversation's row. Its doc holds dataId, obj, value and responseData
-- (json, which, unlike text and jsonb, keeps a NUL a message may hold).
CREATE TABLE chat_records (
    conv_id bigint NOT NULL REFERENCES chat_conversations (id) ON DELETE CASCADE,
    seq     integer NOT NULL,
    time    timestamptz NOT NULL,
    time_ns smallint NOT NULL,
    doc     json NOT NULL,
    PRIMARY KEY (conv_id, seq)
);

-- +goose Down
DROP TABLE chat_records;
DROP TABLE chat_conversations;
DROP TABLE chat_apps;
