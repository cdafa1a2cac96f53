{{ config(materialized='view') }}
-- The features of each native series' newest bar, computed at query time straight
-- from the loaded klines by the same macro as marts.candle_features: serving reads
-- fresh features without waiting for a dbt run. Cheap at any history length: the
-- series are enumerated by skipping along raw's primary key, and each series reads
-- only its last `feature_lookback_bars` + 1 bars (the macro's windows are row-based
-- with exact-time checks, so these rows give the newest bar exactly the features a
-- full history gives), plus BTCUSDT's two bars at or before it. (Resampled intervals
-- are served from marts.candle_features, refreshed by `klinehouse transform`.)

{%- set lookback = var('feature_lookback_bars', 24) %}

with recursive

series as (

    -- A loose index scan: one index probe per series instead of a scan of raw.
    (
        select market, symbol, interval
        from {{ ref('stg_binance__klines') }}
        order by market, symbol, interval
        limit 1
    )
    union all
    select next_series.market, next_series.symbol, next_series.interval
    from series as s
    cross join lateral (
        select k.market, k.symbol, k.interval
        from {{ ref('stg_binance__klines') }} as k
        where (k.market, k.symbol, k.interval) > (s.market, s.symbol, s.interval)
        order by k.market, k.symbol, k.interval
        limit 1
    ) as next_series

),

own_bars as (

    select bars.*
    from series as s
    cross join lateral (
        select k.*
        from {{ ref('stg_binance__klines') }} as k
        where k.market = s.market and k.symbol = s.symbol and k.interval = s.interval
          and k.is_on_grid and k.is_ohlc_valid
        order by k.open_time desc
        limit {{ lookback + 1 }}
    ) as bars

),

latest as (

    select market, symbol, interval, max(open_time) as latest_open_time
    from own_bars
    group by market, symbol, interval

),

btc_bars as (

    -- BTCUSDT at and one bar before each series' newest bar (btc_log_return_1).
    select bars.*
    from latest as l
    cross join lateral (
        select k.*
        from {{ ref('stg_binance__klines') }} as k
        where k.market = l.market and k.symbol = 'BTCUSDT' and k.interval = l.interval
          and k.open_time <= l.latest_open_time
          and k.is_on_grid and k.is_ohlc_valid
        order by k.open_time desc
        limit 2
    ) as bars

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
