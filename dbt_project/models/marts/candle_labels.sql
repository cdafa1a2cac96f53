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
-- Training targets, kept apart from the features: the next bar's log return and
-- direction. NULL for a series' last bar and where the next bar is missing.
-- Incremental: from one bar before the earliest new candle of each series on.

with

{% if is_incremental() %}
{%- set window = incremental_window(ref('candles'), lookback_bars=1) %}
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
    where c.open_time >= {{ add_bars('ch.since', -1, 'c.interval') }}
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
