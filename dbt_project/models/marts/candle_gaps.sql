{{ config(materialized='view') }}
-- One row per gap: a run of missing bars between two consecutive on-grid bars of
-- a native series. A view over the deduplicated klines, so it is always current.
-- (A resampled bar is left out where its bucket is incomplete: the gap of the base
-- series explains it.)

with bars as (

    select
        market,
        symbol,
        interval,
        open_time,
        lead(open_time) over (
            partition by market, symbol, interval order by open_time
        ) as next_open_time
    from {{ ref('int_klines_deduplicated') }}
    where is_on_grid

)

select
    market,
    symbol,
    interval,
    {{ add_bars('open_time', 1, 'interval') }}          as gap_start,
    {{ add_bars('next_open_time', -1, 'interval') }}    as gap_end,
    {{ bars_between('open_time', 'next_open_time', 'interval') }} - 1
                                                        as missing_bars,
    open_time                                           as previous_open_time,
    next_open_time
from bars
where next_open_time > {{ add_bars('open_time', 1, 'interval') }}
