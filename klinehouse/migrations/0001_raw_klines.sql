-- The warehouse's landing table and the two roles the product documents.
-- Portable: runs on plain PostgreSQL and on TimescaleDB (hypertable + compression there).

-- The roles are cluster-wide: created here only when missing and the owner may create roles
-- (CREATEROLE); otherwise an administrator runs the two statements once (the message says so).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'klinehouse_loader')
       OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'klinehouse_reader') THEN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user
                       AND (rolsuper OR rolcreaterole)) THEN
            RAISE EXCEPTION 'roles klinehouse_loader/klinehouse_reader are missing and % may not create roles',
                current_user
                USING HINT = 'as an administrator, run once: CREATE ROLE klinehouse_loader NOLOGIN; '
                             'CREATE ROLE klinehouse_reader NOLOGIN; then run `klinehouse db upgrade` again';
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'klinehouse_loader') THEN
        CREATE ROLE klinehouse_loader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'klinehouse_reader') THEN
        CREATE ROLE klinehouse_reader NOLOGIN;
    END IF;
END
$$;

-- TimescaleDB only where it is installed AND preloaded: CREATE EXTENSION on a server without
-- it in shared_preload_libraries ends the session (FATAL), which no EXCEPTION block catches.
-- Reading shared_preload_libraries needs superuser or pg_read_all_settings; without either
-- the plain-table path is taken and a warning says why.
DO $$
DECLARE
    preload text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        RETURN;
    END IF;
    BEGIN
        preload := current_setting('shared_preload_libraries');
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'timescaledb not enabled: % may not read shared_preload_libraries '
                     '(grant it pg_read_all_settings, or create the extension as a superuser)',
                     current_user;
        RETURN;
    END;
    IF NOT 'timescaledb' = ANY (string_to_array(replace(preload, ' ', ''), ',')) THEN
        RAISE WARNING 'timescaledb not enabled: it is installed but not in shared_preload_libraries '
                     '(add it, restart PostgreSQL, then run `klinehouse db upgrade` on a new database)';
        RETURN;
    END IF;
    CREATE EXTENSION IF NOT EXISTS timescaledb;
EXCEPTION WHEN OTHERS THEN
    -- e.g. a non-superuser owner where the extension is not trusted: stay on plain tables.
    RAISE WARNING 'timescaledb not enabled: %', SQLERRM;
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
