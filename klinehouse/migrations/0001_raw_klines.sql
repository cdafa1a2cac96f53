-- The warehouse's landing table and the two roles the product documents.
-- Portable: runs on plain PostgreSQL and on TimescaleDB (hypertable + compression there).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'klinehouse_loader') THEN
        CREATE ROLE klinehouse_loader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'klinehouse_reader') THEN
        CREATE ROLE klinehouse_reader NOLOGIN;
    END IF;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    END IF;
EXCEPTION WHEN OTHERS THEN
    -- Available but not preloaded (shared_preload_libraries): stay on the plain-table path.
    RAISE NOTICE 'timescaledb not enabled: %', SQLERRM;
END
$$;

CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS ml;

CREATE TABLE IF NOT EXISTS raw.binance_klines (
    market                 text        NOT NULL,
    symbol                 text        NOT NULL,
    interval               text        NOT NULL,
    open_time              timestamptz NOT NULL,
    close_time             timestamptz NOT NULL,
    open                   numeric     NOT NULL,
    high                   numeric     NOT NULL,
    low                    numeric     NOT NULL,
    close                  numeric     NOT NULL,
    volume                 numeric     NOT NULL,
    -- NULL where the source lacks them (freqtrade files carry OHLCV only).
    quote_volume           numeric,
    trades                 bigint,
    taker_buy_base_volume  numeric,
    taker_buy_quote_volume numeric,
    source                 text        NOT NULL,
    ingested_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT binance_klines_pkey PRIMARY KEY (market, symbol, interval, open_time),
    CONSTRAINT binance_klines_market_check CHECK (market IN ('spot', 'usdm', 'coinm')),
    CONSTRAINT binance_klines_source_check CHECK (source IN ('rest', 'archive', 'stream', 'import'))
);

CREATE INDEX IF NOT EXISTS binance_klines_ingested_at_idx ON raw.binance_klines (ingested_at);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('raw.binance_klines', 'open_time',
                                  chunk_time_interval => interval '30 days',
                                  if_not_exists => true, migrate_data => true);
        ALTER TABLE raw.binance_klines SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'market, symbol, interval',
            timescaledb.compress_orderby = 'open_time'
        );
        PERFORM add_compression_policy('raw.binance_klines', interval '90 days', if_not_exists => true);
    END IF;
END
$$;

-- klinehouse_loader writes raw; klinehouse_reader reads the marts (and the model registry) only.
REVOKE ALL ON SCHEMA raw FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA raw FROM PUBLIC;
GRANT USAGE ON SCHEMA raw TO klinehouse_loader;
GRANT SELECT, INSERT, UPDATE ON raw.binance_klines TO klinehouse_loader;

GRANT USAGE ON SCHEMA marts TO klinehouse_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA marts TO klinehouse_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA marts GRANT SELECT ON TABLES TO klinehouse_reader;
GRANT USAGE ON SCHEMA ml TO klinehouse_reader;
