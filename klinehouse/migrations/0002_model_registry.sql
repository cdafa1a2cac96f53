-- The model registry: one row per trained model. The artefacts (.cbm files and
-- metadata.json) live in the lake under `artifact_uri`; this table is the index
-- and the single place that says which model is the champion.

CREATE SCHEMA IF NOT EXISTS ml;

CREATE TABLE IF NOT EXISTS ml.model_registry (
    version         text        PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    status          text        NOT NULL,
    status_reason   text        NOT NULL DEFAULT '',
    promoted_at     timestamptz,
    market          text        NOT NULL,
    interval        text        NOT NULL,
    symbols         text[]      NOT NULL,
    features        text[]      NOT NULL,
    train_start     timestamptz NOT NULL,
    train_end       timestamptz NOT NULL,
    buy_threshold   double precision NOT NULL,
    sell_threshold  double precision NOT NULL,
    allow_short     boolean     NOT NULL DEFAULT false,
    fee_rate        double precision NOT NULL,
    seed            integer     NOT NULL,
    code_version    text        NOT NULL,
    -- row count and last open_time per series: what the model saw
    data_fingerprint jsonb      NOT NULL,
    -- out-of-sample (walk-forward) metrics of the model and of the baselines
    metrics         jsonb       NOT NULL,
    artifact_uri    text        NOT NULL,
    CONSTRAINT model_registry_status_check
        CHECK (status IN ('champion', 'challenger', 'rejected', 'retired')),
    CONSTRAINT model_registry_thresholds_check CHECK (sell_threshold <= buy_threshold)
);

-- At most one champion: promotion is a transaction that retires the old one first.
CREATE UNIQUE INDEX IF NOT EXISTS model_registry_one_champion
    ON ml.model_registry ((true)) WHERE status = 'champion';
CREATE INDEX IF NOT EXISTS model_registry_created_at_idx ON ml.model_registry (created_at);

-- The gRPC service reads the champion as klinehouse_reader.
GRANT USAGE ON SCHEMA ml TO klinehouse_reader;
GRANT SELECT ON ml.model_registry TO klinehouse_reader;
