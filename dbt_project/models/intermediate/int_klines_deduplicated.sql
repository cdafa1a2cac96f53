-- One row per key, the latest ingested version winning. raw's primary key already
-- guarantees this for one table; the guard keeps every model downstream correct if
-- klines ever arrive through a second path (a union of sources, a hypertable
-- without the unique index).
select distinct on (market, symbol, interval, open_time)
    *
from {{ ref('stg_binance__klines') }}
order by market, symbol, interval, open_time, ingested_at desc
