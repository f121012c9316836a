-- +goose Up

-- What the update routes change besides names: a dataset's intro and
-- avatar, a collection's tags, and when each was last changed (NULL: never
-- since it was created; *_ns as in 00001).
ALTER TABLE dataset_datasets
    ADD COLUMN intro       text NOT NULL DEFAULT '',
    ADD COLUMN avatar      text NOT NULL DEFAULT '',
    ADD COLUMN update_time timestamptz,
    ADD COLUMN update_ns   smallint NOT NULL DEFAULT 0;
ALTER TABLE dataset_collections
    ADD COLUMN tags        text[] NOT NULL DEFAULT '{}',
    ADD COLUMN update_time timestamptz,
    ADD COLUMN update_ns   smallint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE dataset_collections DROP COLUMN update_ns, DROP COLUMN update_time, DROP COLUMN tags;
ALTER TABLE dataset_datasets DROP COLUMN update_ns, DROP COLUMN update_time, DROP COLUMN avatar, DROP COLUMN intro;
