{#- Resample base-interval klines into coarser bars (var `resample`: base -> targets).
    Only complete buckets (every base bar present, on grid, valid and
    closing after it opens) become bars; the
    bucket is bar_start() (date_bin, or time_bucket under TimescaleDB).
    `since`: optional SQL expression; only buckets containing it or later are built.
    `ranges`: optional incremental ranges (macro in_ranges); only the buckets of the
    ranges of each target interval are built, from their base bars read by key.

    Without `ranges` (the view int_klines_resampled, read by a full refresh) the base
    bars are read once: each target is built from the complete bars of the coarsest
    finer target whose buckets nest in its own (5m -> 15m -> 1h -> 4h -> 1d), which
    yields the same bars as from the base bars (a bucket is complete exactly when each
    of its nested buckets is; sums are exact numerics). With `ranges` each target reads
    its own base bars by key. -#}
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
    {%- elif ranges is not none %}
    {%- for base, target in selects %}
    {{ _resampled_bars(base, target, base, relation, since, ranges) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- else %}
    {%- set steps = _resample_chain(plan) %}
    with
    {%- for step in steps %}
    {{ step.cte }} as (
        {{ _resampled_bars(step.base, step.target, step.source,
                           relation if step.source == step.base else step.source_cte, since) }}
    ){{ "," if not loop.last }}
    {%- endfor %}
    {%- for step in steps %}
    select * from {{ step.cte }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- endif %}
{%- endmacro %}

{#- One target's complete buckets from the bars of `source` (the base interval's klines
    in `relation`, filtered to valid on-grid bars, or a finer target's resampled bars):
    first open, max high, min low, last close, summed volumes. In a complete bucket
    the first bar opens at the bucket and the last one bar of `source` before its end. -#}
{% macro _resampled_bars(base, target, source, relation, since=none, ranges=none) -%}
    {%- set iv = "'" ~ target ~ "'" -%}
    {%- set src = "'" ~ source ~ "'" -%}
    {%- set bucket_end = add_bars('bucket', 1, iv) -%}
    select
        market,
        symbol,
        '{{ target }}'::text                                        as interval,
        bucket                                                      as open_time,
        {{ bucket_end }} - interval '1 millisecond'
                                                                    as close_time,
        max(open) filter (where open_time = bucket)                 as open,
        max(high)                                                   as high,
        min(low)                                                    as low,
        max(close) filter (where open_time = {{ add_bars(bucket_end, -1, src) }})
                                                                    as close,
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
        {%- if source == base %}
        where interval = '{{ base }}' and is_on_grid and is_ohlc_valid and not is_close_before_open
        {%- else %}
        where true
        {%- endif %}
        {%- if since is not none %}
          and open_time >= {{ bar_start(since, target) }}
        {%- endif %}
        {%- if ranges is not none %}
          and {{ resample_base_filter(ranges, target) }}
        {%- endif %}
    ) as source_bars
    group by market, symbol, bucket
    having count(*) = {{ bars_between('bucket', bucket_end, src) }}
{%- endmacro %}

{#- The order targets are built in and where each reads from: [{base, target, source,
    cte, source_cte}], finest first; source is the coarsest earlier target of the same
    base whose bars nest in the target's (else the base). -#}
{% macro _resample_chain(plan) -%}
    {%- set seconds = kline_interval_seconds() -%}
    {%- set steps = [] -%}
    {%- for base, targets in plan.items() -%}
        {%- set built = [] -%}
        {%- set ordered = [] -%}
        {%- for target in targets -%}
            {%- do ordered.append((seconds.get(target, 31 * 86400), target)) -%}
        {%- endfor -%}
        {%- for _, target in ordered | sort -%}
            {%- set ns = namespace(source=base) -%}
            {%- for finer in built if _nests(finer, target) -%}
                {%- set ns.source = finer -%}
            {%- endfor -%}
            {%- do steps.append({
                "base": base, "target": target, "source": ns.source,
                "cte": _resample_cte(base, target), "source_cte": _resample_cte(base, ns.source),
            }) -%}
            {%- do built.append(target) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(steps) }}
{%- endmacro %}

{% macro _resample_cte(base, target) -%}
    {{ return("resampled_" ~ base ~ "_to_" ~ target) }}
{%- endmacro %}

{#- Does every bar of interval `finer` lie within one bar of `coarser` (bar_start's
    grids: epoch-aligned, weeks from Monday 1970-01-05, months from the 1st, UTC)? -#}
{% macro _nests(finer, coarser) -%}
    {%- set seconds = kline_interval_seconds() -%}
    {%- if finer not in seconds -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set origin = {"1w": 4 * 86400} -%}
    {%- set offset = origin.get(coarser, 0) - origin.get(finer, 0) -%}
    {%- if coarser == "1M" -%}
        {{ return(86400 % seconds[finer] == 0 and origin.get(finer, 0) % seconds[finer] == 0) }}
    {%- endif -%}
    {{ return(coarser in seconds and seconds[coarser] % seconds[finer] == 0
              and offset % seconds[finer] == 0) }}
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
