-- The change log of raw: which (series, open_time) ranges each transaction inserted,
-- revised or deleted. The incremental dbt models reprocess exactly those windows
-- (plus the feature lookback and the label horizon) instead of scanning raw or a mart,
-- and a deleted or revised-to-invalid kline leaves the marts as a full refresh would.
--
-- Written by statement-level triggers over the transition tables: one row per series
-- and UTC day a statement touched (a 20M-row COPY logs a few thousand rows, one new
-- bar per series logs one row per series). `xid` is the writing transaction: a
-- consumer takes every change with xid below its snapshot's xmin (all of them
-- committed or aborted), so a transaction that commits late is never skipped.

CREATE TABLE IF NOT EXISTS raw.kline_changes (
    xid             xid8        NOT NULL DEFAULT pg_current_xact_id(),
    market          text        NOT NULL,
    symbol          text        NOT NULL,
    interval        text        NOT NULL,
    first_open_time timestamptz NOT NULL,
    last_open_time  timestamptz NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS kline_changes_xid_idx ON raw.kline_changes (xid);

CREATE OR REPLACE FUNCTION raw.log_kline_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO raw.kline_changes (market, symbol, interval, first_open_time, last_open_time)
        SELECT market, symbol, interval, min(open_time), max(open_time)
        FROM new_rows
        GROUP BY market, symbol, interval, date_bin(interval '1 day', open_time, timestamptz '1970-01-01');
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO raw.kline_changes (market, symbol, interval, first_open_time, last_open_time)
        SELECT market, symbol, interval, min(open_time), max(open_time)
        FROM old_rows
        GROUP BY market, symbol, interval, date_bin(interval '1 day', open_time, timestamptz '1970-01-01');
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    is_hypertable boolean := false;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                 WHERE hypertable_schema = ''raw'' AND hypertable_name = ''binance_klines'')'
            INTO is_hypertable;
    END IF;
    IF is_hypertable THEN
        -- Hypertables refuse transition tables: log row by row there.
        EXECUTE $sql$
            CREATE OR REPLACE FUNCTION raw.log_kline_change_row() RETURNS trigger
            LANGUAGE plpgsql AS $body$
            BEGIN
                IF TG_OP IN ('UPDATE', 'DELETE') THEN
                    INSERT INTO raw.kline_changes (market, symbol, interval, first_open_time, last_open_time)
                    VALUES (OLD.market, OLD.symbol, OLD.interval, OLD.open_time, OLD.open_time);
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    INSERT INTO raw.kline_changes (market, symbol, interval, first_open_time, last_open_time)
                    VALUES (NEW.market, NEW.symbol, NEW.interval, NEW.open_time, NEW.open_time);
                END IF;
                RETURN NULL;
            END
            $body$
        $sql$;
        EXECUTE 'CREATE TRIGGER binance_klines_changes AFTER INSERT OR UPDATE OR DELETE
                 ON raw.binance_klines FOR EACH ROW EXECUTE FUNCTION raw.log_kline_change_row()';
    ELSE
        CREATE TRIGGER binance_klines_inserted AFTER INSERT ON raw.binance_klines
            REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION raw.log_kline_changes();
        CREATE TRIGGER binance_klines_updated AFTER UPDATE ON raw.binance_klines
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION raw.log_kline_changes();
        CREATE TRIGGER binance_klines_deleted AFTER DELETE ON raw.binance_klines
            REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION raw.log_kline_changes();
    END IF;
END
$$;

-- Every klinehouse_loader write logs its changes (the trigger runs as the writer).
GRANT INSERT ON raw.kline_changes TO klinehouse_loader;

-- How far each incremental model has consumed the change log: every change with
-- xid < done is reflected in it. Written in the model's own transaction by dbt.
CREATE TABLE IF NOT EXISTS klinehouse_meta.increment_watermarks (
    model       text        PRIMARY KEY,
    done        xid8        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
