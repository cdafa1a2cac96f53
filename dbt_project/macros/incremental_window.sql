{#- Incremental windows from raw's change log (migration 0005: raw.kline_changes, one row
    per series and UTC day a transaction inserted, revised or deleted, tagged with its
    xid; klinehouse_meta.increment_watermarks: per model, every change with xid < done
    is reflected in it).

    A model's run takes the changes with done <= xid < upto, where upto is the snapshot's
    xmin for marts.candles (every such transaction has committed or aborted, so a late
    commit is never skipped) and marts.candles' own watermark for the models built on it
    (they never run ahead of the candles they read). The windows reach the SQL as
    literals, so every read and the delete go through the key (market, symbol, interval,
    open_time) and cost what changed, not what the warehouse holds.

    A range is {market, interval, symbols (list, or none for every symbol), first, last},
    first/last being SQL expressions of timestamptz constants. -#}

{% macro increment_tag() %}{{ return("klinehouse_increment") }}{% endmacro %}

{#- Ranges above this count are merged per (market, interval): coarser, never wrong. -#}
{% macro max_change_ranges() %}{{ return(64) }}{% endmacro %}

{% macro _scalar(query) -%}
    {{ return(run_query(query).columns[0].values()[0]) }}
{%- endmacro %}

{% macro watermark_of(model_name) -%}
    {{ return(_scalar(
        "select (select done::text from klinehouse_meta.increment_watermarks where model = '"
        ~ model_name ~ "')"
    )) }}
{%- endmacro %}

{#- {incremental, upto, ranges}: ranges none = reprocess everything (no watermark yet). -#}
{% macro pending_changes(upstream=none) -%}
    {%- if not execute -%}
        {{ return({"incremental": false, "upto": "0", "ranges": []}) }}
    {%- endif -%}
    {%- set upto = watermark_of(upstream) if upstream is not none else none -%}
    {%- if upto is none -%}
        {%- set upto = _scalar("select pg_snapshot_xmin(pg_current_snapshot())::text") -%}
    {%- endif -%}
    {%- if not is_incremental() -%}
        {{ return({"incremental": false, "upto": upto, "ranges": []}) }}
    {%- endif -%}
    {%- set done = watermark_of(this.identifier) -%}
    {%- if done is none -%}
        {{ return({"incremental": true, "upto": upto, "ranges": none}) }}
    {%- endif -%}
    {%- set window -%}
        xid >= '{{ done }}'::xid8 and xid < '{{ upto }}'::xid8
    {%- endset -%}
    {%- set by_day -%}
        select market, symbol, interval,
               min(first_open_time) as first_open_time, max(last_open_time) as last_open_time
        from raw.kline_changes
        where {{ window }}
        group by market, symbol, interval,
                 date_bin(interval '1 day', first_open_time, timestamptz '1970-01-01')
    {%- endset -%}
    {%- set grouped = run_query(
        "select market, interval, first_open_time::text, last_open_time::text,"
        ~ " string_agg(symbol, ',' order by symbol) from (" ~ by_day ~ ") as d"
        ~ " group by market, interval, first_open_time, last_open_time"
        ~ " order by market, interval, first_open_time limit " ~ (max_change_ranges() + 1)
    ) -%}
    {%- if grouped.rows | length > max_change_ranges() -%}
        {%- set grouped = run_query(
            "select market, interval, min(first_open_time)::text, max(last_open_time)::text,"
            ~ " string_agg(distinct symbol, ',') from raw.kline_changes where " ~ window
            ~ " group by market, interval order by market, interval"
        ) -%}
    {%- endif -%}
    {%- set ranges = [] -%}
    {%- for row in grouped.rows -%}
        {%- do ranges.append({
            "market": row[0], "interval": row[1],
            "first": "timestamptz '" ~ row[2] ~ "'", "last": "timestamptz '" ~ row[3] ~ "'",
            "symbols": row[4].split(","),
        }) -%}
    {%- endfor -%}
    {{ return({"incremental": true, "upto": upto, "ranges": ranges}) }}
{%- endmacro %}

{#- The marts.candles rows a raw range can change: its own series and span, and the
    buckets of every interval resampled from it (var `resample`). -#}
{% macro candle_ranges(raw_ranges) -%}
    {%- if raw_ranges is none -%}{{ return(none) }}{%- endif -%}
    {%- set plan = var("resample", {}) -%}
    {%- set out = [] -%}
    {%- for r in raw_ranges -%}
        {%- do out.append(r) -%}
        {%- for target in plan.get(r.interval, []) -%}
            {%- do out.append({
                "market": r.market, "interval": target, "symbols": r.symbols,
                "first": bar_start(r.first, target), "last": bar_start(r.last, target),
            }) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- Each range widened `before` bars earlier and `after` bars later. -#}
{% macro shift_ranges(ranges, before=0, after=0) -%}
    {%- if ranges is none -%}{{ return(none) }}{%- endif -%}
    {%- set out = [] -%}
    {%- for r in ranges -%}
        {%- set iv = "'" ~ r.interval ~ "'" -%}
        {%- do out.append({
            "market": r.market, "interval": r.interval, "symbols": r.symbols,
            "first": add_bars(r.first, -before, iv) if before else r.first,
            "last": add_bars(r.last, after, iv) if after else r.last,
        }) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- The same spans for `symbols` (none: every symbol of the market and interval). -#}
{% macro with_symbols(ranges, symbols) -%}
    {%- if ranges is none -%}{{ return(none) }}{%- endif -%}
    {%- set out = [] -%}
    {%- for r in ranges -%}
        {%- do out.append({
            "market": r.market, "interval": r.interval, "symbols": symbols,
            "first": r.first, "last": r.last,
        }) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- SQL predicate: the row (optionally `alias.`) lies in one of the ranges. -#}
{% macro in_ranges(ranges, alias=none) -%}
    {%- set p = (alias ~ ".") if alias else "" -%}
    {%- if ranges is none -%}
        true
    {%- elif not ranges -%}
        false
    {%- else -%}
        ({%- for r in ranges %}
        {{ "or " if not loop.first }}({{ p }}market = '{{ r.market }}' and {{ p }}interval = '{{ r.interval }}'
            {%- if r.symbols is not none %} and {{ p }}symbol in ('{{ r.symbols | join("', '") }}'){% endif %}
            and {{ p }}open_time between {{ r.first }} and {{ r.last }})
        {%- endfor %})
    {%- endif -%}
{%- endmacro %}

{#- Put at the end of an incremental model's SQL: what its pre-hook
    (apply_increment) deletes before the insert, and the watermark it then records,
    both in the model's own transaction. Carried in the compiled SQL, so the hook acts
    on exactly the window the SELECT read. -#}
{% macro increment_marker(changes, delete_ranges) -%}
    {%- set payload = {
        "upto": changes.upto,
        "delete": in_ranges(delete_ranges) | trim if changes.incremental else none,
    } -%}
/* {{ increment_tag() }} {{ tojson(payload) }} */
{%- endmacro %}

{#- The pre-hook of each incremental model (dbt_project.yml). -#}
{% macro apply_increment() -%}
    {%- if not execute -%}{{ return("") }}{%- endif -%}
    {%- set found = modules.re.search(
        "/\\* " ~ increment_tag() ~ " (.*?) \\*/", model.compiled_code or "", modules.re.S
    ) -%}
    {%- if not found -%}
        {{ exceptions.raise_compiler_error(
            this ~ ": an incremental model must end with increment_marker()") }}
    {%- endif -%}
    {%- set payload = fromjson(found.group(1)) -%}
    {%- if payload.delete is not none and payload.delete != "false" %}
    delete from {{ this }} where {{ payload.delete }};
    {%- endif %}
    insert into klinehouse_meta.increment_watermarks (model, done)
    values ('{{ this.identifier }}', '{{ payload.upto }}'::xid8)
    on conflict (model) do update set done = excluded.done, updated_at = now();
    -- Changes every consumer has reflected are no longer needed.
    delete from raw.kline_changes
    where xid < (
        select min(done) from klinehouse_meta.increment_watermarks
        where model in ('{{ change_consumers() | join("', '") }}')
        having count(*) = {{ change_consumers() | length }}
    );
{%- endmacro %}

{% macro change_consumers() %}{{ return(["candles", "candle_features", "candle_labels"]) }}{% endmacro %}
