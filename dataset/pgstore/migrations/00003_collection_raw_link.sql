-- +goose Up

-- A link collection's web page (collection/create/link), FastGPT's
-- rawLink; '' for every other collection.
ALTER TABLE dataset_collections
    ADD COLUMN raw_link text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE dataset_collections DROP COLUMN raw_link;
