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
-- open_time: the quality gate's window (`validate --since`) reads by it.
-- Training targets, kept apart from the features: the log return and direction over
-- the next h bars, h in `horizons` (a copy of klinehouse.features.LABEL_HORIZONS, kept
-- in step by the column tests). NULL where bar t+h is not the h-th bar after t (end of
-- a series, a missing bar in between).
-- Incremental: the spans of marts.candles changed since the last run and the
-- `horizons[-1]` bars before each (a changed candle changes the labels of the h bars
-- before it) are deleted and recomputed (raw's change log, up to marts.candles'
-- watermark).
{%- set horizons = [1, 4, 24] %}
{%- set lookback = horizons[-1] %}

with

{%- set changes = pending_changes(upstream='candles') %}
{#- A candle change reaches its own label and those of the `lookback` bars before it. -#}
{%- set affected = shift_ranges(candle_ranges(changes.ranges), before=lookback) %}
{% if is_incremental() %}
scope as materialized (

    -- The affected spans and the `lookback` bars after each, read by key; the pre-hook
    -- deleted the affected spans from this table. Materialized: else PostgreSQL pushes
    -- the market and symbols common to every range of the final filter down here (they
    -- are partition keys of the window), and a scan by market and symbols alone is the
    -- whole mart when every series changed: it chose a sequential scan of marts.candles.
    select *
    from {{ ref('candles') }}
    where {{ in_ranges(shift_ranges(affected, after=lookback)) }}

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
        {%- for h in horizons %}
        lead(open_time, {{ h }}) over bars  as open_time_{{ h }},
        lead(close, {{ h }}) over bars      as close_{{ h }},
        {%- endfor %}
        ingested_at
    from scope
    where is_on_grid
    window bars as (partition by market, symbol, interval order by open_time)

)

select
    market,
    symbol,
    interval,
    open_time,
    {%- for h in horizons %}
    {%- set suffix = '' if h == 1 else '_' ~ h %}
    case when open_time_{{ h }} = {{ add_bars('open_time', h, 'interval') }}
        then ln(close_{{ h }}::double precision / close::double precision)
    end::double precision                                           as target_log_return_{{ h }},
    case when open_time_{{ h }} = {{ add_bars('open_time', h, 'interval') }}
        then close_{{ h }} > close
    end                                                             as target_up{{ suffix }},
    {%- endfor %}
    ingested_at
from next_bars
{% if is_incremental() %}
where {{ in_ranges(affected) }}
{% endif %}
{{ increment_marker(changes, affected) }}
