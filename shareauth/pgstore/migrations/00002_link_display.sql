-- +goose Up
-- What a link shows its visitors (shareauth.Display); existing links get
-- FastGPT's defaults, which show the least.
ALTER TABLE shareauth_links
    ADD COLUMN show_node_status    boolean NOT NULL DEFAULT false,
    ADD COLUMN show_complete_quote boolean NOT NULL DEFAULT false,
    ADD COLUMN show_raw_source     boolean NOT NULL DEFAULT false,
    ADD COLUMN immediate_response  text NOT NULL DEFAULT '',
    ADD COLUMN default_response    text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE shareauth_links
    DROP COLUMN show_node_status,
    DROP COLUMN show_complete_quote,
    DROP COLUMN show_raw_source,
    DROP COLUMN immediate_response,
    DROP COLUMN default_response;
