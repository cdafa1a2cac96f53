{{
    config(
        materialized='incremental',
        unique_key=['market', 'symbol', 'interval', 'open_time'],
        incremental_strategy='append',
        pre_hook="{{ apply_increment() }}",
        on_schema_change='fail',
        indexes=[
            {'columns': ['market', 'symbol', 'interval', 'open_time'], 'unique': true},
            {'columns': ['ingested_at']},
            {'columns': ['open_time']},
        ],
    )
}}
-- No (market, interval, open_time) index here: the planner would also pick it for one
-- series' `order by open_time limit 1` reads (the dashboard), which must stay on the
-- key; candle_features names every symbol of a BTCUSDT change instead.
-- Clean candles: native klines with valid OHLC and close_time after open_time (the
-- others stay visible, flagged, in staging and raw), plus bars resampled from a finer
-- interval where no native bar exists.
-- Incremental: the spans raw's change log names since the last run (macro
-- pending_changes) are deleted and rebuilt, so a revised, invalidated or deleted
-- kline leaves this table as a full refresh would.

with

{%- set changes = pending_changes() %}
{%- set affected = candle_ranges(changes.ranges) %}
{% if is_incremental() %}
native as (

    -- Only the series and spans raw's change log names (revised, new or deleted
    -- klines), read by key; the pre-hook deleted the same spans from this table.
    select *, null::text as resampled_from
    from {{ ref('int_klines_deduplicated') }}
    where {{ in_ranges(affected) }}
      and is_ohlc_valid
      and not is_close_before_open

),

resampled as (

    {{ resample_klines(ref('int_klines_deduplicated'), ranges=affected) }}

),

native_keys as (

    -- Every native kline (valid or not) in the same spans, read by key: what a
    -- resampled bar yields to. Bounded here, or the anti-join below may hash all of raw.
    select market, symbol, interval, open_time
    from {{ ref('stg_binance__klines') }}
    where {{ in_ranges(affected) }}

),
{% else %}
native as (

    select *, null::text as resampled_from
    from {{ ref('int_klines_deduplicated') }}
    where is_ohlc_valid
      and not is_close_before_open

),

resampled as (

    select * from {{ ref('int_klines_resampled') }}

),

native_keys as (

    select market, symbol, interval, open_time
    from {{ ref('stg_binance__klines') }}

),
{% endif %}

unioned as (

    select
        market, symbol, interval, open_time, close_time,
        open, high, low, close, volume, quote_volume, trade_count,
        taker_buy_base_volume, taker_buy_quote_volume,
        source, resampled_from, is_on_grid, is_zero_volume, is_close_time_short, ingested_at
    from native

    union all

    select
        market, symbol, interval, open_time, close_time,
        open, high, low, close, volume, quote_volume, trade_count,
        taker_buy_base_volume, taker_buy_quote_volume,
        source, resampled_from, is_on_grid, is_zero_volume, is_close_time_short, ingested_at
    from resampled as r
    where not exists (
        select 1
        from native_keys as n
        where n.market = r.market
          and n.symbol = r.symbol
          and n.interval = r.interval
          and n.open_time = r.open_time
    )

)

select * from unioned
{% if is_incremental() %}
where {{ in_ranges(affected) }}
{% endif %}
{{ increment_marker(changes, affected) }}
