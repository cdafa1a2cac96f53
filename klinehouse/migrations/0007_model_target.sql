-- What each registered model's stored classifier predicts (issue 18's candidates): which
-- candidate of training.candidates it is, how many bars ahead it looks and its target
-- column of marts.candle_labels (or the fee-aware target derived from one). The service
-- says so in every prediction. A model registered before the candidates predicted the
-- next bar's direction: the defaults (training.candidates.REFERENCE,
-- klinehouse.features.LABEL_HORIZON_BARS and LABEL_CLASS, kept equal by a test).

ALTER TABLE ml.model_registry
    ADD COLUMN IF NOT EXISTS candidate text NOT NULL DEFAULT 'catboost_h1',
    ADD COLUMN IF NOT EXISTS horizon_bars integer NOT NULL DEFAULT 1,
    ADD COLUMN IF NOT EXISTS target text NOT NULL DEFAULT 'target_up';

-- Rows registered with the candidates but before this migration: their metrics name the
-- chosen candidate, whose classifier was stored when it could be served (a CatBoost
-- one); otherwise the stored classifier is the reference, as the defaults say.
UPDATE ml.model_registry
SET candidate = metrics ->> 'chosen',
    horizon_bars = (metrics -> 'candidates' -> (metrics ->> 'chosen') ->> 'horizon')::integer,
    target = metrics -> 'candidates' -> (metrics ->> 'chosen') ->> 'target'
WHERE (metrics ->> 'servable')::boolean
  AND metrics -> 'candidates' -> (metrics ->> 'chosen') ->> 'horizon' IS NOT NULL
  AND metrics -> 'candidates' -> (metrics ->> 'chosen') ->> 'target' IS NOT NULL;

ALTER TABLE ml.model_registry
    ADD CONSTRAINT model_registry_horizon_bars_check CHECK (horizon_bars >= 1);
