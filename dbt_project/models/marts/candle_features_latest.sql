{{ config(materialized='view') }}
-- The features of each native series' newest bar, computed at query time straight
-- from the loaded klines by the same macro as marts.candle_features: serving reads
-- fresh features without waiting for a dbt run. Each series reads only its last
-- `feature_lookback_bars` + 1 bars, plus BTCUSDT's bar at and before its newest one
-- (btc_log_return_1, also for a series that lags BTCUSDT); older extra rows cannot
-- change the newest bar's features, whose windows check exact times. (Resampled
-- intervals are served from marts.candle_features, refreshed by `klinehouse transform`.)

{%- set lookback = var('feature_lookback_bars') %}

with

latest as (

    select market, symbol, interval, max(open_time) as latest_open_time
    from {{ ref('stg_binance__klines') }}
    where is_on_grid and is_ohlc_valid and not is_close_before_open
    group by market, symbol, interval

),

own_bars as (

    select k.*
    from {{ ref('stg_binance__klines') }} as k
    inner join latest as l
        on l.market = k.market and l.symbol = k.symbol and l.interval = k.interval
    where k.open_time >= {{ add_bars('l.latest_open_time', -lookback, 'k.interval') }}
      and k.is_ohlc_valid
      and not k.is_close_before_open

),

btc_bars as (

    select k.*
    from {{ ref('stg_binance__klines') }} as k
    inner join latest as l
        on l.market = k.market and l.interval = k.interval
    where k.symbol = 'BTCUSDT'
      and k.open_time >= {{ add_bars('l.latest_open_time', -1, 'k.interval') }}
      and k.open_time <= l.latest_open_time
      and k.is_ohlc_valid
      and not k.is_close_before_open

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
