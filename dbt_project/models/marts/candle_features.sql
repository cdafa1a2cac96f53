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
-- per (market, interval) touched since the last run, the features from the earliest
-- new candle on are recomputed, reading `feature_lookback_bars` bars before it (the
-- longest window), so the rows equal what a full refresh yields. Recomputing the
-- whole (market, interval) also refreshes btc_log_return_1 of every symbol.

{%- set lookback = var('feature_lookback_bars', 24) %}

with

{% if is_incremental() %}
{%- set window = incremental_window(ref('candles'), lookback_bars=lookback) %}
changed as (

    select market, interval, min(open_time) as since
    from {{ ref('candles') }}
    where ingested_at > {{ timestamp_literal(window.high_water) }}
    group by market, interval

),

scope as (

    select c.*
    from {{ ref('candles') }} as c
    inner join changed as ch
        on ch.market = c.market and ch.interval = c.interval
    where c.open_time >= {{ add_bars('ch.since', -lookback, 'c.interval') }}
      and c.open_time >= {{ timestamp_literal(window.since) }}  -- the same bound, as a constant

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
inner join changed
    on changed.market = features.market and changed.interval = features.interval
where features.open_time >= changed.since
{% endif %}
