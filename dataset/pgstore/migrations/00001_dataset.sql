-- +goose Up

-- Ids compare bytewise (COLLATE "C"), as the memory and bbolt stores order
-- them. Postgres keeps times to the microsecond: each *_ns column holds the
-- nanoseconds beyond, so that a time reads back as it was written and
-- orders as the other stores order it (QA pairs are a nanosecond apart).
-- What a record holds besides its keys, times and queue state is its doc
-- (json, not jsonb or text: kept verbatim, a NUL in q or a included).

CREATE TABLE dataset_datasets (
    id           text COLLATE "C" PRIMARY KEY,
    team_id      text COLLATE "C" NOT NULL,
    name         text NOT NULL,
    vector_model text NOT NULL,
    create_time  timestamptz NOT NULL,
    create_ns    smallint NOT NULL
);
CREATE INDEX dataset_datasets_team ON dataset_datasets (team_id, create_time, create_ns, id);

-- The foreign keys keep a deletion whole across replicas: a row that names
-- a collection (or a collection that names a dataset) is written under a
-- KEY SHARE lock on it, and the deletions lock it FOR UPDATE first, so
-- that they wait for every writer already in and every later writer fails.
CREATE TABLE dataset_collections (
    id            text COLLATE "C" PRIMARY KEY,
    team_id       text COLLATE "C" NOT NULL,
    dataset_id    text COLLATE "C" NOT NULL REFERENCES dataset_datasets (id),
    name          text NOT NULL,
    type          text NOT NULL,    -- virtual or text
    training_type text NOT NULL,    -- index or qa
    chunk_size    integer NOT NULL,
    create_time   timestamptz NOT NULL,
    create_ns     smallint NOT NULL
);
CREATE INDEX dataset_collections_dataset ON dataset_collections (dataset_id, create_time, create_ns, id);

-- The q of every data item and queued item, per collection: the primary
-- key is what makes a q pushed through two replicas at once queue once.
-- qhash is the first 16 bytes of the SHA-256 of the trimmed q; owner the
-- data or item id holding it.
CREATE TABLE dataset_qkeys (
    collection_id text COLLATE "C" NOT NULL REFERENCES dataset_collections (id),
    qhash         bytea NOT NULL,
    owner         text COLLATE "C" NOT NULL,
    PRIMARY KEY (collection_id, qhash)
);

CREATE TABLE dataset_data (
    id            text COLLATE "C" PRIMARY KEY,
    dataset_id    text COLLATE "C" NOT NULL,
    collection_id text COLLATE "C" NOT NULL REFERENCES dataset_collections (id),
    qhash         bytea NOT NULL,   -- its q, as dataset_qkeys has it
    create_time   timestamptz NOT NULL,
    create_ns     smallint NOT NULL,
    doc           json NOT NULL     -- the Data, times to the nanosecond
);
CREATE INDEX dataset_data_collection ON dataset_data (collection_id, create_time, create_ns, id);

-- One row per vector, its float32 values little-endian in vec (measured
-- faster to load than real[]: see BenchmarkLoadEncoding). Large vectors
-- are kept out of line uncompressed, as floats do not compress.
CREATE TABLE dataset_vectors (
    data_id    text COLLATE "C" NOT NULL REFERENCES dataset_data (id),
    id         text COLLATE "C" NOT NULL,
    dataset_id text COLLATE "C" NOT NULL,
    vec        bytea NOT NULL,
    PRIMARY KEY (data_id, id)
);
ALTER TABLE dataset_vectors ALTER COLUMN vec SET STORAGE EXTERNAL;

-- The training queue. lease_until is set by Claim and cleared by
-- Reschedule and Release: a claimed item is kept from other replicas'
-- claims until then.
CREATE TABLE dataset_training (
    id            text COLLATE "C" PRIMARY KEY,
    dataset_id    text COLLATE "C" NOT NULL,
    collection_id text COLLATE "C" NOT NULL REFERENCES dataset_collections (id),
    qhash         bytea NOT NULL,
    attempts      integer NOT NULL,
    next_attempt  timestamptz NOT NULL,
    next_ns       smallint NOT NULL,
    last_error    text NOT NULL,
    failed        boolean NOT NULL,
    lease_until   timestamptz,
    doc           json NOT NULL
);
CREATE INDEX dataset_training_due ON dataset_training (next_attempt, next_ns, id) WHERE NOT failed;
CREATE INDEX dataset_training_collection ON dataset_training (collection_id, failed, id);

-- The usage outbox: what committed training cost, until the recorder has it.
CREATE TABLE dataset_usage (
    id            text COLLATE "C" PRIMARY KEY,
    time          timestamptz NOT NULL,
    time_ns       smallint NOT NULL,
    team_id       text NOT NULL,
    key_id        text NOT NULL,
    dataset_id    text NOT NULL,
    collection_id text NOT NULL,
    bill_id       text NOT NULL,
    module        text NOT NULL,
    model         text NOT NULL,
    input_tokens  integer NOT NULL,
    output_tokens integer NOT NULL,
    items         integer NOT NULL
);
CREATE INDEX dataset_usage_time ON dataset_usage (time, time_ns, id);

-- The change feed: a row per change of a data item (data_id NULL: the
-- dataset was deleted), written in the change's transaction, stamped with
-- the transaction's id. Readers consume rows in (xid, seq) order and only
-- those of transactions older than their snapshot's xmin (see feed.go).
CREATE TABLE dataset_changes (
    xid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    dataset_id text COLLATE "C" NOT NULL,
    data_id    text COLLATE "C",
    removed    text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (xid, seq)
);
CREATE INDEX dataset_changes_data ON dataset_changes (data_id, seq);
CREATE INDEX dataset_changes_at ON dataset_changes (at);

-- The greatest (xid, seq) pruned from the feed: a reader behind it has
-- missed changes and loads a snapshot again.
CREATE TABLE dataset_changes_horizon (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    xid xid8 NOT NULL,
    seq bigint NOT NULL
);
INSERT INTO dataset_changes_horizon (xid, seq) VALUES ('0', 0);

-- The full-text outbox (TextOutbox) is the feed itself: a data item is
-- pending while it has a change row newer than the version cleared here.
CREATE TABLE dataset_text_cleared (
    data_id text COLLATE "C" PRIMARY KEY,
    version bigint NOT NULL
);

-- +goose Down
DROP TABLE dataset_text_cleared;
DROP TABLE dataset_changes_horizon;
DROP TABLE dataset_changes;
DROP TABLE dataset_usage;
DROP TABLE dataset_training;
DROP TABLE dataset_vectors;
DROP TABLE dataset_data;
DROP TABLE dataset_qkeys;
DROP TABLE dataset_collections;
DROP TABLE dataset_datasets;
