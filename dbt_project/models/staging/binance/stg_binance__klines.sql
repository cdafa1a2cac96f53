-- Typed and renamed klines with the invariant flags carried, one row per key
-- (raw's primary key). No filtering here: flags, not deletions.
with source as (

    select * from {{ source('binance', 'binance_klines') }}

),

renamed as (

    select
        market::text                        as market,
        symbol::text                        as symbol,
        interval::text                      as interval,
        open_time::timestamptz              as open_time,
        close_time::timestamptz             as close_time,
        open::numeric                       as open,
        high::numeric                       as high,
        low::numeric                        as low,
        close::numeric                      as close,
        volume::numeric                     as volume,
        quote_volume::numeric               as quote_volume,
        trades::bigint                      as trade_count,
        taker_buy_base_volume::numeric      as taker_buy_base_volume,
        taker_buy_quote_volume::numeric     as taker_buy_quote_volume,
        source::text                        as source,
        ingested_at::timestamptz            as ingested_at
    from source

)

select
    *,
    {{ is_on_grid('open_time', 'interval') }} as is_on_grid,
    (high >= greatest(open, close) and low <= least(open, close) and low > 0 and volume >= 0)
                                                            as is_ohlc_valid,
    (volume = 0)                                            as is_zero_volume,
    -- Real archives hold maintenance bars that close before they open (zero volume).
    -- raw keeps them as Binance sent them; marts.candles leaves them out.
    (close_time <= open_time)                               as is_close_before_open,
    -- Binance closes a bar 1 ms before the next opens; outages cut it short.
    (close_time < {{ add_bars('open_time', 1, 'interval') }} - interval '1 millisecond')
                                                            as is_close_time_short
from renamed
