-- +goose Up

-- A dataset's agentModel: the QA model its QA-mode training asks ('':
-- the service's default one).
ALTER TABLE dataset_datasets ADD COLUMN agent_model text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE dataset_datasets DROP COLUMN agent_model;
