{{
    config(
        materialized='incremental',
        unique_key=['market', 'symbol', 'interval', 'open_time'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[
            {'columns': ['market', 'symbol', 'interval', 'open_time'], 'unique': true},
            {'columns': ['ingested_at']},
        ],
    )
}}
-- The model features of every on-grid candle (macro candle_features). Incremental:
-- each series touched since the last run is recomputed from its earliest new or
-- revised candle on, reading `feature_lookback_bars` bars before it (the longest
-- window), so the rows equal what a full refresh yields; a BTCUSDT change also
-- recomputes every series of its market and interval from there (btc_log_return_1).

{%- set lookback = var('feature_lookback_bars') %}

with

{% if is_incremental() %}
{%- set window = incremental_window(ref('candles'), lookback_bars=lookback) %}
changed as (

    select market, symbol, interval, min(open_time) as since
    from {{ ref('candles') }}
    where ingested_at > {{ timestamp_literal(window.high_water) }}
    group by market, symbol, interval

),

targets as (

    -- The changed series from their earliest new candle, and, where BTCUSDT changed,
    -- every series of its market and interval from there (btc_log_return_1).
    select market, symbol, interval, min(since) as since
    from (
        select market, symbol, interval, since from changed
        union all
        select c.market, c.symbol, c.interval, btc.since
        from {{ ref('candles') }} as c
        inner join changed as btc
            on btc.symbol = 'BTCUSDT' and btc.market = c.market and btc.interval = c.interval
        where c.open_time >= btc.since
          and c.open_time >= {{ timestamp_literal(window.since) }}
    ) as touched
    group by market, symbol, interval

),

btc_targets as (

    select market, interval, min(since) as since
    from targets
    group by market, interval

),

scope as (

    -- Each target series from `lookback` bars before its first recomputed bar, and
    -- BTCUSDT over the same span for the cross-asset feature.
    select c.*
    from {{ ref('candles') }} as c
    inner join targets as t
        on t.market = c.market and t.symbol = c.symbol and t.interval = c.interval
    where c.open_time >= {{ add_bars('t.since', -lookback, 'c.interval') }}
      and c.open_time >= {{ timestamp_literal(window.since) }}  -- the same bound, as a constant

    union

    select c.*
    from {{ ref('candles') }} as c
    inner join btc_targets as b
        on b.market = c.market and b.interval = c.interval
    where c.symbol = 'BTCUSDT'
      and c.open_time >= {{ add_bars('b.since', -lookback, 'c.interval') }}
      and c.open_time >= {{ timestamp_literal(window.since) }}

),
{% else %}
scope as (

    select * from {{ ref('candles') }}

),
{% endif %}

features as (

    {{ candle_features('scope') }}

)

select features.*
from features
{% if is_incremental() %}
inner join targets
    on  targets.market = features.market
    and targets.symbol = features.symbol
    and targets.interval = features.interval
where features.open_time >= targets.since
{% endif %}
