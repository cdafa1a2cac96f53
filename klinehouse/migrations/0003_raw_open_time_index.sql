-- Time-window scans of raw (the quality gate's `--since`, freshness, dbt's lookback by
-- time) cannot use the primary key, which leads with market/symbol/interval.
-- TimescaleDB's hypertable already has this index; IF NOT EXISTS keeps both paths.
CREATE INDEX IF NOT EXISTS binance_klines_open_time_idx ON raw.binance_klines (open_time);
