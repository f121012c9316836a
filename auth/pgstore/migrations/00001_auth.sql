-- +goose Up
-- Ids compare byte-wise (COLLATE "C"), as the other stores order them.
-- A key's usage lives in its row: one UPDATE adds to it under the row's
-- lock, and an update of the settings leaves it as it is.
CREATE TABLE auth_keys (
    id               text COLLATE "C" PRIMARY KEY,
    name             text NOT NULL,
    team_id          text NOT NULL,
    app_id           text NOT NULL,
    scopes           text[] NOT NULL,
    expired_time     timestamptz,          -- NULL: never
    max_usage_points double precision NOT NULL,
    rpm              integer NOT NULL,
    allowed_ips      inet[] NOT NULL,      -- inet, not cidr: a prefix keeps its address bits
    disabled         boolean NOT NULL,
    source           text NOT NULL,
    hash             bytea NOT NULL,
    hint             text NOT NULL,
    retired_hashes   bytea[] NOT NULL,     -- with retired_until, Key.Retired in order
    retired_until    timestamptz[] NOT NULL,
    create_time      timestamptz NOT NULL,
    update_time      timestamptz NOT NULL,
    meta             jsonb,                -- NULL: none
    usage_points     double precision NOT NULL DEFAULT 0,
    last_used_time   timestamptz           -- NULL: never used
);
CREATE INDEX auth_keys_created ON auth_keys (create_time, id);
CREATE INDEX auth_keys_team ON auth_keys (team_id, create_time, id);

-- Every hash that resolves to a key, current or retired, once: the
-- primary key is what refuses a key value already in use.
CREATE TABLE auth_key_hashes (
    hash   bytea PRIMARY KEY,
    key_id text COLLATE "C" NOT NULL REFERENCES auth_keys (id) ON DELETE CASCADE
);
CREATE INDEX auth_key_hashes_key ON auth_key_hashes (key_id);

-- The audit trail. seq is drawn at insert, so transactions of several
-- replicas may commit theirs out of order; readers only order by it.
CREATE TABLE auth_audit (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time         timestamptz NOT NULL,
    action       text NOT NULL,
    key_id       text NOT NULL,
    hint         text NOT NULL,
    team_id      text NOT NULL,
    actor_key_id text NOT NULL,
    reason       text NOT NULL,
    remote_ip    text NOT NULL,
    count        bigint NOT NULL
);
-- The audit API asks for one team (and maybe one key), newest first.
CREATE INDEX auth_audit_team ON auth_audit (team_id, seq);
CREATE INDEX auth_audit_key ON auth_audit (key_id, seq);

-- +goose Down
DROP TABLE auth_audit;
DROP TABLE auth_key_hashes;
DROP TABLE auth_keys;
