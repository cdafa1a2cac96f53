{{ config(materialized='view') }}
-- The features of each native series' newest bar, computed at query time straight
-- from the loaded klines by the same macro as marts.candle_features: fresh features
-- without waiting for a dbt run. Every read goes by key, so a query costs
-- O(series × lookback) whatever the history: the series come from the catalogue
-- serving.series (written by the loaders with their candles); each series' newest
-- clean bar and the `feature_lookback_bars` clean bars before it, and BTCUSDT's bars
-- at and before that time (btc_log_return_1, also for a series that lags BTCUSDT),
-- are key ranges of serving.klines (raw with marts.candles' cleaning rules,
-- migrations 0004 and 0008). Older rows cannot change the newest bar's features,
-- whose windows check exact times. (Resampled intervals are in marts.candle_features,
-- refreshed by `klinehouse transform`.)

{%- set lookback = var('feature_lookback_bars') %}

with

own_bars as (

    -- each series' newest clean bar and the `lookback` clean bars before it, newest
    -- first through the key
    select k.*
    from {{ source('serving', 'series') }} as s
    cross join lateral (
        select *, true as is_on_grid
        from {{ source('serving', 'klines') }} as b
        where b.market = s.market
          and b.symbol = s.symbol
          and b.interval = s.interval
        order by b.open_time desc
        limit {{ lookback + 1 }}
    ) as k

),

latest as (

    select market, symbol, interval, max(open_time) as latest_open_time
    from own_bars
    group by market, symbol, interval

),

btc_bars as (

    select k.*
    from latest as l
    cross join lateral (
        select *, true as is_on_grid
        from {{ source('serving', 'klines') }} as b
        where b.market = l.market
          and b.symbol = 'BTCUSDT'
          and b.interval = l.interval
          and b.open_time between {{ add_bars('l.latest_open_time', -1, 'l.interval') }}
                              and l.latest_open_time
        -- a fence: pulled up, the range would become a join filter over all BTCUSDT bars
        offset 0
    ) as k

),

recent as (

    select * from own_bars
    union
    select * from btc_bars

),

features as (

    {{ candle_features('recent') }}

)

select features.*
from features
inner join latest
    on  latest.market = features.market
    and latest.symbol = features.symbol
    and latest.interval = features.interval
    and latest.latest_open_time = features.open_time
