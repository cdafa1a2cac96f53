{#- Resample base-interval klines into coarser bars (var `resample`: base -> targets).
    Only complete buckets (every base bar present, on grid, valid and
    closing after it opens) become bars; the
    bucket is bar_start() (date_bin, or time_bucket under TimescaleDB).
    `since`: optional SQL expression; only buckets containing it or later are built.
    `ranges`: optional incremental ranges (macro in_ranges); only the buckets of the
    ranges of each target interval are built, from their base bars read by key. -#}
{% macro resample_klines(relation, since=none, ranges=none) -%}
    {%- set plan = var("resample", {}) -%}
    {%- set selects = [] -%}
    {%- for base, targets in plan.items() -%}
        {%- for target in targets -%}
            {%- do selects.append((base, target)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if not selects %}
    select * from (
        select
            null::text as market, null::text as symbol, null::text as interval,
            null::timestamptz as open_time, null::timestamptz as close_time,
            null::numeric as open, null::numeric as high, null::numeric as low,
            null::numeric as close, null::numeric as volume, null::numeric as quote_volume,
            null::bigint as trade_count, null::numeric as taker_buy_base_volume,
            null::numeric as taker_buy_quote_volume, null::text as source,
            null::timestamptz as ingested_at, null::boolean as is_on_grid,
            null::boolean as is_ohlc_valid, null::boolean as is_zero_volume,
            null::boolean as is_close_time_short, null::text as resampled_from
    ) as nothing where false
    {%- endif %}
    {%- for base, target in selects %}
    select
        market,
        symbol,
        '{{ target }}'::text                                        as interval,
        bucket                                                      as open_time,
        {{ add_bars('bucket', 1, "'" ~ target ~ "'") }} - interval '1 millisecond'
                                                                    as close_time,
        (array_agg(open order by open_time))[1]                     as open,
        max(high)                                                   as high,
        min(low)                                                    as low,
        (array_agg(close order by open_time desc))[1]               as close,
        sum(volume)                                                 as volume,
        case when count(quote_volume) = count(*) then sum(quote_volume) end
                                                                    as quote_volume,
        case when count(trade_count) = count(*) then sum(trade_count) end::bigint
                                                                    as trade_count,
        case when count(taker_buy_base_volume) = count(*) then sum(taker_buy_base_volume) end
                                                                    as taker_buy_base_volume,
        case when count(taker_buy_quote_volume) = count(*) then sum(taker_buy_quote_volume) end
                                                                    as taker_buy_quote_volume,
        'resampled'::text                                           as source,
        max(ingested_at)                                            as ingested_at,
        true                                                        as is_on_grid,
        true                                                        as is_ohlc_valid,
        sum(volume) = 0                                             as is_zero_volume,
        bool_or(is_close_time_short)                                as is_close_time_short,
        '{{ base }}'::text                                          as resampled_from
    from (
        select *, {{ bar_start('open_time', target) }} as bucket
        from {{ relation }}
        where interval = '{{ base }}' and is_on_grid and is_ohlc_valid and not is_close_before_open
        {%- if since is not none %}
          and open_time >= {{ bar_start(since, target) }}
        {%- endif %}
        {%- if ranges is not none %}
          and {{ resample_base_filter(ranges, target) }}
        {%- endif %}
    ) as base_bars
    group by market, symbol, bucket
    having count(*) = {{ bars_between('bucket', add_bars('bucket', 1, "'" ~ target ~ "'"), "'" ~ base ~ "'") }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#- Base bars of the target-interval buckets in `ranges` (half-open: up to the end of
    the last bucket). -#}
{% macro resample_base_filter(ranges, target) -%}
    {%- set iv = "'" ~ target ~ "'" -%}
    {%- set terms = [] -%}
    {%- for r in ranges if r.interval == target -%}
        {%- set symbols = "" if r.symbols is none
            else " and symbol in ('" ~ (r.symbols | join("', '")) ~ "')" -%}
        {%- do terms.append(
            "(market = '" ~ r.market ~ "'" ~ symbols
            ~ " and open_time >= " ~ bar_start(r.first, target)
            ~ " and open_time < " ~ add_bars(bar_start(r.last, target), 1, iv) ~ ")"
        ) -%}
    {%- endfor -%}
    {%- if terms -%}({{ terms | join(" or ") }}){%- else -%}false{%- endif -%}
{%- endmacro %}
