-- +goose Up
-- Ids compare byte-wise (COLLATE "C"), as the other stores order them.
-- Absent ids (no key, no app, no bill) are '', as in billing.Record.
CREATE TABLE billing_records (
    id            text COLLATE "C" PRIMARY KEY,
    team_id       text COLLATE "C" NOT NULL,
    key_id        text COLLATE "C" NOT NULL,
    app_id        text COLLATE "C" NOT NULL,
    share_id      text NOT NULL,
    dataset_id    text NOT NULL,
    bill_id       text NOT NULL,
    source        text NOT NULL,
    module        text NOT NULL,
    model         text NOT NULL,
    input_tokens  bigint NOT NULL,
    output_tokens bigint NOT NULL,
    points        double precision NOT NULL,
    record_time   timestamptz NOT NULL
);
-- List and Summary read one team's records newest first, optionally of
-- one key or one app.
CREATE INDEX billing_records_team ON billing_records (team_id, record_time, id);
CREATE INDEX billing_records_key ON billing_records (team_id, key_id, record_time, id);
CREATE INDEX billing_records_app ON billing_records (team_id, app_id, record_time, id);

CREATE TABLE billing_bills (
    id          text COLLATE "C" PRIMARY KEY,
    team_id     text NOT NULL,
    name        text NOT NULL,
    dataset_id  text NOT NULL,
    create_time timestamptz NOT NULL
);

-- The totals Record adds to. Each total is spread over slots, a record
-- adding to one of them, so that concurrent writers of one key, app or
-- bill item (a training run's workers, a busy service key) seldom wait on
-- each other's row lock; a total is the sum of its slots. No foreign keys:
-- bills are never deleted, and a key share lock on the bill per record
-- would serialize its writers again.
CREATE TABLE billing_key_points (
    key_id text COLLATE "C" NOT NULL,
    slot   smallint NOT NULL,
    points double precision NOT NULL,
    PRIMARY KEY (key_id, slot)
);
CREATE TABLE billing_app_points (
    team_id text COLLATE "C" NOT NULL,
    app_id  text COLLATE "C" NOT NULL,
    slot    smallint NOT NULL,
    points  double precision NOT NULL,
    PRIMARY KEY (team_id, app_id, slot)
);
CREATE TABLE billing_bill_items (
    bill_id    text COLLATE "C" NOT NULL,
    module     text NOT NULL,
    model      text NOT NULL,
    slot       smallint NOT NULL,
    tokens     bigint NOT NULL,
    points     double precision NOT NULL,
    first_time timestamptz NOT NULL DEFAULT now(), -- items list in the order they were first spent on
    PRIMARY KEY (bill_id, module, model, slot)
);

-- +goose Down
DROP TABLE billing_bill_items;
DROP TABLE billing_app_points;
DROP TABLE billing_key_points;
DROP TABLE billing_bills;
DROP TABLE billing_records;
