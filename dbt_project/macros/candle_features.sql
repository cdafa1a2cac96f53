{#- The one SQL definition of the model features (klinehouse/features.py lists them).
    Used by marts.candle_features (incremental, for training) and by the view
    marts.candle_features_latest (serving), so the two cannot drift apart.

    `candles` is a relation or CTE name with the columns of marts.candles. A feature
    of bar t uses bars up to and including t only. Windows count bars: a window is
    valid only when its first bar lies exactly k intervals before t (one row per key,
    so no bar is missing in between); otherwise — a gap or too little history — the
    feature is NULL, never 0. Off-grid bars are left out. -#}
{% macro candle_features(candles) -%}
with on_grid as (

    select
        market, symbol, interval, open_time,
        high, low, close, volume, taker_buy_base_volume, ingested_at
    from {{ candles }}
    where is_on_grid

),

{#- Everything a bar takes from the bars before it is computed in this one window pass,
    once per bar: as expressions of the window functions here, the window aggregates
    of `windowed` read them as plain columns (a CTE in between would be folded into
    their arguments and recomputed for every bar of every frame). -#}
{%- set has = {} %}
{%- for k in [1, 4, 14, 23, 24] %}
    {%- do has.update({k: "coalesce(lag(open_time, " ~ k ~ ") over bars = "
                          ~ add_bars('open_time', -k, 'interval') ~ ", false)"}) %}
{%- endfor %}
{%- set close_change = "case when " ~ has[1] ~ " then close - lag(close, 1) over bars end" %}
lagged as (

    select
        *,
        lag(close, 4) over bars                             as close_lag_4,
        lag(close, 24) over bars                            as close_lag_24,
        {%- for k, expression in has.items() %}
        {{ expression }}
                                                            as has_{{ k }},
        {%- endfor %}
        case when {{ has[1] }}
            then ln(close::double precision / (lag(close, 1) over bars)::double precision) end
                                                            as log_return_1,
        greatest({{ close_change }}, 0)                     as gain,
        greatest(-({{ close_change }}), 0)                  as loss
    from on_grid
    window bars as (partition by market, symbol, interval order by open_time)

),

windowed as (

    select
        *,
        stddev_samp(log_return_1) over last_24              as log_return_1_std_24,
        avg(gain) over last_14                              as gain_mean_14,
        avg(loss) over last_14                              as loss_mean_14,
        avg(volume) over last_24                            as volume_mean_24,
        stddev_samp(volume) over last_24                    as volume_std_24
    from lagged
    window
        last_14 as (partition by market, symbol, interval order by open_time
                    rows between 13 preceding and current row),
        last_24 as (partition by market, symbol, interval order by open_time
                    rows between 23 preceding and current row)

),

features as (

    select
        market,
        symbol,
        interval,
        open_time,
        log_return_1,
        case when has_4 then ln(close::double precision / close_lag_4::double precision) end
                                                            as log_return_4,
        case when has_24 then ln(close::double precision / close_lag_24::double precision) end
                                                            as log_return_24,
        -- 24 one-bar returns need 25 contiguous closes.
        case when has_24 then log_return_1_std_24 end       as volatility_24,
        -- Cutler's RSI: simple means over the last 14 changes (15 contiguous closes).
        case
            when not has_14 then null
            when loss_mean_14 = 0 then 100
            else 100 - 100 / (1 + gain_mean_14 / loss_mean_14)
        end                                                 as rsi_14,
        case when has_23 then (volume - volume_mean_24) / nullif(volume_std_24, 0) end
                                                            as volume_zscore_24,
        taker_buy_base_volume / nullif(volume, 0)           as taker_buy_ratio,
        (high - low) / nullif(close, 0)                     as range_pct,
        extract(hour from open_time at time zone 'UTC')     as hour_of_day,
        extract(isodow from open_time at time zone 'UTC')   as day_of_week,
        ingested_at
    from windowed

),

-- BTCUSDT's one-bar return per bar time, apart: the join's inner side is a small
-- materialized set (1/S of the rows) that is hashed, or scanned per outer row when the
-- planner expects few, never the whole features CTE once per output row.
btc as materialized (

    select market, interval, open_time, log_return_1
    from features
    where symbol = 'BTCUSDT'

)

select
    f.market,
    f.symbol,
    f.interval,
    f.open_time,
    f.log_return_1::double precision        as log_return_1,
    f.log_return_4::double precision        as log_return_4,
    f.log_return_24::double precision       as log_return_24,
    f.volatility_24::double precision       as volatility_24,
    f.rsi_14::double precision              as rsi_14,
    f.volume_zscore_24::double precision    as volume_zscore_24,
    f.taker_buy_ratio::double precision     as taker_buy_ratio,
    f.range_pct::double precision           as range_pct,
    f.hour_of_day::integer                  as hour_of_day,
    f.day_of_week::integer                  as day_of_week,
    btc.log_return_1::double precision      as btc_log_return_1,
    f.ingested_at
from features as f
left join btc
    on  btc.market = f.market
    and btc.interval = f.interval
    and btc.open_time = f.open_time
{%- endmacro %}
