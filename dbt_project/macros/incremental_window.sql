{#- The bounds of an incremental run, fetched before the model's SQL is compiled so
    that they reach the query as constants (PostgreSQL cannot push a sub-select through
    DISTINCT ON or a join, a literal it can, and indexes on open_time then apply):
      high_water: max(ingested_at) already in `this`;
      since:      earliest open_time ingested after it in `changes`, moved back
                  `lookback_bars` bars (none when nothing arrived). -#}
{% macro incremental_window(changes, lookback_bars=0) -%}
    {%- if not execute -%}
        {{ return({"high_water": "-infinity", "since": none}) }}
    {%- endif -%}
    {%- set high_water = run_query(
        "select coalesce(max(ingested_at), '-infinity'::timestamptz)::text from " ~ this
    ).columns[0].values()[0] -%}
    {%- set since = run_query(
        "select min(" ~ add_bars("open_time", -lookback_bars, "interval") ~ ")::text from "
        ~ changes ~ " where ingested_at > '" ~ high_water ~ "'::timestamptz"
    ).columns[0].values()[0] -%}
    {{ return({"high_water": high_water, "since": since}) }}
{%- endmacro %}

{#- SQL literal of a bound (`since` none means nothing to do: a bound nothing passes). -#}
{% macro timestamp_literal(value) -%}
    {%- if value is none -%}'infinity'::timestamptz{%- else -%}'{{ value }}'::timestamptz{%- endif -%}
{%- endmacro %}
