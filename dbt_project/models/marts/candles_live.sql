{{ config(materialized='view') }}
-- The klines as loaded, before any transform: a view over staging, so a bar that
-- `klinehouse stream` just committed is here at once (marts.candles has it only after
-- the next dbt run). Read it by key, newest first (`... order by open_time desc
-- limit n`): the filter on the key reaches raw's primary key. The dashboard's live bar.
select
    market,
    symbol,
    interval,
    open_time,
    close_time,
    open,
    high,
    low,
    close,
    volume,
    source,
    is_on_grid,
    is_zero_volume,
    is_close_time_short,
    ingested_at
from {{ ref('stg_binance__klines') }}
where is_ohlc_valid
