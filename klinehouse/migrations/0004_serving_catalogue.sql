-- The gRPC service reads by key, never through dbt-managed relations (dbt swaps and
-- drops them during runs). Two objects, owned by the migrations, not by dbt:
--
-- serving.series: the catalogue of loaded series, one row per (market, interval, symbol)
--   with its first and newest open_time, written by the loader in the same transaction
--   as the candles that change it (extract.load / klinehouse.series).
-- serving.klines: raw.binance_klines with marts.candles' cleaning rules (on the grid of
--   its interval, valid OHLC): the service reads it by (market, symbol, interval,
--   open_time) ranges through raw's primary key. The two rules are copies of the
--   staging model's is_on_grid / is_ohlc_valid, kept in step by
--   tests/inference/test_serving_reads.py.

CREATE SCHEMA IF NOT EXISTS serving;

CREATE TABLE IF NOT EXISTS serving.series (
    market          text        NOT NULL,
    interval        text        NOT NULL,
    symbol          text        NOT NULL,
    first_open_time timestamptz NOT NULL,
    last_open_time  timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT series_pkey PRIMARY KEY (market, interval, symbol)
);
CREATE INDEX IF NOT EXISTS series_market_symbol_idx ON serving.series (market, symbol);

-- The series already loaded (one pass over raw, once).
INSERT INTO serving.series (market, interval, symbol, first_open_time, last_open_time)
SELECT market, interval, symbol, min(open_time), max(open_time)
FROM raw.binance_klines
GROUP BY market, interval, symbol
ON CONFLICT (market, interval, symbol) DO NOTHING;

CREATE OR REPLACE FUNCTION serving.is_on_grid(ts timestamptz, iv text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN iv = '1M' THEN date_trunc('month', ts AT TIME ZONE 'UTC') = (ts AT TIME ZONE 'UTC')
        WHEN iv = '1w' THEN date_bin(interval '604800 seconds', ts, timestamptz '1970-01-05 00:00:00+00') = ts
        ELSE date_bin(
            (CASE iv
                WHEN '1s' THEN 1 WHEN '1m' THEN 60 WHEN '3m' THEN 180 WHEN '5m' THEN 300
                WHEN '15m' THEN 900 WHEN '30m' THEN 1800 WHEN '1h' THEN 3600
                WHEN '2h' THEN 7200 WHEN '4h' THEN 14400 WHEN '6h' THEN 21600
                WHEN '8h' THEN 28800 WHEN '12h' THEN 43200 WHEN '1d' THEN 86400
                WHEN '3d' THEN 259200
            END) * interval '1 second',
            ts, timestamptz '1970-01-01 00:00:00+00') = ts
    END
$$;

CREATE OR REPLACE FUNCTION serving.is_ohlc_valid(
    open numeric, high numeric, low numeric, close numeric, volume numeric
) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT high >= greatest(open, close) AND low <= least(open, close) AND low > 0 AND volume >= 0
$$;

CREATE OR REPLACE VIEW serving.klines AS
SELECT
    market, symbol, interval, open_time, close_time,
    open, high, low, close, volume, quote_volume,
    trades AS trade_count, taker_buy_base_volume, taker_buy_quote_volume,
    source, ingested_at
FROM raw.binance_klines
WHERE coalesce(serving.is_on_grid(open_time, interval), false)
  AND coalesce(serving.is_ohlc_valid(open, high, low, close, volume), false);

-- The loader maintains the catalogue; the service reads both (the view runs with its
-- owner's rights: klinehouse_reader still has no access to raw itself).
GRANT USAGE ON SCHEMA serving TO klinehouse_loader, klinehouse_reader;
GRANT SELECT, INSERT, UPDATE ON serving.series TO klinehouse_loader;
GRANT SELECT ON serving.series, serving.klines TO klinehouse_reader;
GRANT EXECUTE ON FUNCTION serving.is_on_grid(timestamptz, text) TO klinehouse_reader;
GRANT EXECUTE ON FUNCTION serving.is_ohlc_valid(numeric, numeric, numeric, numeric, numeric)
    TO klinehouse_reader;
