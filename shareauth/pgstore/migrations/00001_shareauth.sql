-- +goose Up
-- Ids compare byte-wise (COLLATE "C"), as the other stores order them.
CREATE TABLE shareauth_links (
    id               text COLLATE "C" PRIMARY KEY,
    team_id          text NOT NULL,
    app_id           text NOT NULL,
    name             text NOT NULL,
    expired_time     timestamptz,          -- NULL: never
    qpm              integer NOT NULL,
    max_usage_points double precision NOT NULL,
    hook_url         text NOT NULL,
    response_detail  boolean NOT NULL,
    secret           text NOT NULL,
    usage_points     double precision NOT NULL,
    last_used_time   timestamptz,          -- NULL: never used
    create_time      timestamptz NOT NULL
);
CREATE INDEX shareauth_links_team ON shareauth_links (team_id, create_time, id);

-- The finish outbox. No foreign key to the links: a callback queued as its
-- link goes is kept and delivered, as by the other stores; DeleteLink drops
-- a link's callbacks in the statement that drops the link.
CREATE TABLE shareauth_deliveries (
    id           text COLLATE "C" PRIMARY KEY,
    share_id     text NOT NULL,
    path         text NOT NULL,
    body         bytea NOT NULL,
    attempts     integer NOT NULL,
    next_attempt timestamptz NOT NULL,
    last_error   text NOT NULL,
    failed       boolean NOT NULL,
    create_time  timestamptz NOT NULL,
    lease_until  timestamptz              -- set by Claim, cleared by Reschedule
);
CREATE INDEX shareauth_deliveries_due ON shareauth_deliveries (next_attempt, id) WHERE NOT failed;
CREATE INDEX shareauth_deliveries_link ON shareauth_deliveries (share_id, create_time, id);

-- +goose Down
DROP TABLE shareauth_deliveries;
DROP TABLE shareauth_links;
