-- A champion per (market, interval) instead of one for the whole registry: each
-- series family is served by the model trained on it. Promotion still retires the
-- pair's old champion first, in the same transaction.

DROP INDEX IF EXISTS ml.model_registry_one_champion;

CREATE UNIQUE INDEX IF NOT EXISTS model_registry_one_champion_per_series
    ON ml.model_registry (market, interval) WHERE status = 'champion';
