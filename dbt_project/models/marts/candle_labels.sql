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
        ],
    )
}}
-- Training targets, kept apart from the features: the next bar's log return and
-- direction. NULL for a series' last bar and where the next bar is missing.
-- Incremental: the spans of marts.candles changed since the last run and the bar
-- before each are deleted and recomputed (raw's change log, up to marts.candles'
-- watermark).

with

{%- set changes = pending_changes(upstream='candles') %}
{#- A candle change reaches its own label and the previous bar's. -#}
{%- set affected = shift_ranges(candle_ranges(changes.ranges), before=1) %}
{% if is_incremental() %}
scope as (

    -- The affected spans and the bar after each, read by key; the pre-hook deleted
    -- the affected spans from this table.
    select *
    from {{ ref('candles') }}
    where {{ in_ranges(shift_ranges(affected, after=1)) }}

),
{% else %}
scope as (

    select * from {{ ref('candles') }}

),
{% endif %}

next_bars as (

    select
        market,
        symbol,
        interval,
        open_time,
        close,
        ingested_at,
        lead(open_time) over bars  as next_open_time,
        lead(close) over bars      as next_close
    from scope
    where is_on_grid
    window bars as (partition by market, symbol, interval order by open_time)

)

select
    market,
    symbol,
    interval,
    open_time,
    case when next_open_time = {{ add_bars('open_time', 1, 'interval') }}
        then ln(next_close::double precision / close::double precision)
    end::double precision                                           as target_log_return_1,
    case when next_open_time = {{ add_bars('open_time', 1, 'interval') }}
        then next_close > close
    end                                                             as target_up,
    ingested_at
from next_bars
{% if is_incremental() %}
where {{ in_ranges(affected) }}
{% endif %}
{{ increment_marker(changes, affected) }}
