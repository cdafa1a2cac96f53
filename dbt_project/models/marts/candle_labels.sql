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
-- Training targets, kept apart from the features: the log return and direction over
-- the next h bars, h in `horizons` (a copy of klinehouse.features.LABEL_HORIZONS, kept
-- in step by the column tests). NULL where bar t+h is not the h-th bar after t (end of
-- a series, a missing bar in between). Incremental: from `horizons[-1]` bars before the
-- earliest new candle of each series on (a new candle changes the labels of the h bars
-- before it).
{%- set horizons = [1, 4, 24] %}
{%- set lookback = horizons[-1] %}

with

{% if is_incremental() %}
{%- set window = incremental_window(ref('candles'), lookback_bars=lookback) %}
changed as (

    select market, symbol, interval, min(open_time) as since
    from {{ ref('candles') }}
    where ingested_at > {{ timestamp_literal(window.high_water) }}
    group by market, symbol, interval

),

scope as (

    select c.*
    from {{ ref('candles') }} as c
    inner join changed as ch
        on ch.market = c.market and ch.symbol = c.symbol and ch.interval = c.interval
    where c.open_time >= {{ add_bars('ch.since', -lookback, 'c.interval') }}
      and c.open_time >= {{ timestamp_literal(window.since) }}  -- the same bound, as a constant

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
