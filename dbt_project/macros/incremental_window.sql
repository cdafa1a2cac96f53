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

{#- The symbols of each (market, interval) of `ranges` in `relation` (a mart keyed by
    (market, symbol, interval, open_time)): {"market|interval": [symbol, ...]}. A loose
    index scan per market (the next symbol after the last one found, then one key probe
    per symbol and interval): O(symbols), whatever the history. -#}
{% macro symbols_by_series(relation, ranges) -%}
    {%- set wanted = {} -%}
    {%- for r in ranges -%}
        {%- do wanted.setdefault(r.market, []) -%}
        {%- if r.interval not in wanted[r.market] -%}{%- do wanted[r.market].append(r.interval) -%}{%- endif -%}
    {%- endfor -%}
    {%- set found = {} -%}
    {%- for market, intervals in wanted.items() -%}
        {%- set query -%}
            with recursive symbols(symbol) as (
                (select symbol from {{ relation }} where market = '{{ market }}'
                 order by symbol limit 1)
                union all
                select (select c.symbol from {{ relation }} as c
                        where c.market = '{{ market }}' and c.symbol > s.symbol
                        order by c.symbol limit 1)
                from symbols as s
                where s.symbol is not null
            )
            select i.interval, string_agg(s.symbol, ',' order by s.symbol)
            from symbols as s
            cross join unnest(array['{{ intervals | join("', '") }}']) as i(interval)
            -- A key probe per pair: `order by open_time limit 1` (an exists may become a
            -- hash semi-join, a bare limit 1 a sequential scan, over the whole mart).
            cross join lateral (
                select c.open_time from {{ relation }} as c
                where c.market = '{{ market }}' and c.symbol = s.symbol
                  and c.interval = i.interval
                order by c.open_time
                limit 1
            ) as probe
            where s.symbol is not null
            group by i.interval
        {%- endset -%}
        {%- for row in run_query(query).rows -%}
            {%- do found.update({market ~ "|" ~ row[0]: row[1].split(",")}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}

{#- The same spans for every symbol `relation` holds in their market and interval, named
    one by one (symbols_by_series), so that reads and deletes stay on the key. -#}
{% macro with_every_symbol(ranges, relation) -%}
    {%- if ranges is none or not ranges or not execute -%}{{ return(ranges) }}{%- endif -%}
    {%- set symbols = symbols_by_series(relation, ranges) -%}
    {%- set out = [] -%}
    {%- for r in ranges -%}
        {%- set listed = symbols.get(r.market ~ "|" ~ r.interval, []) -%}
        {%- do out.append({
            "market": r.market, "interval": r.interval,
            "symbols": (listed + (r.symbols or [])) | unique | sort | list,
            "first": r.first, "last": r.last,
        }) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- Ranges of the same market, interval and span as one, their symbols united: fewer
    arms in the predicates, the same rows. -#}
{% macro merge_ranges(ranges) -%}
    {%- if ranges is none -%}{{ return(none) }}{%- endif -%}
    {%- set merged = {} -%}
    {%- set order = [] -%}
    {%- for r in ranges -%}
        {%- set key = [r.market, r.interval, r.first, r.last] | join("|") -%}
        {%- if key not in merged -%}
            {%- do order.append(key) -%}
            {%- do merged.update({key: {
                "market": r.market, "interval": r.interval, "symbols": r.symbols,
                "first": r.first, "last": r.last,
            }}) -%}
        {%- elif merged[key].symbols is not none -%}
            {%- do merged[key].update({"symbols": none if r.symbols is none
                else (merged[key].symbols + r.symbols) | unique | sort | list}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set out = [] -%}
    {%- for key in order -%}{%- do out.append(merged[key]) -%}{%- endfor -%}
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
