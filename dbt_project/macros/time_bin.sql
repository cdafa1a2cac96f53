{#- Bucketing: TimescaleDB's time_bucket where the extension is installed in the
    target database, PostgreSQL's portable date_bin (14+) elsewhere. Same result. -#}
{% macro has_timescaledb() -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set result = run_query("select count(*) from pg_extension where extname = 'timescaledb'") -%}
    {{ return(result.columns[0].values()[0] > 0) }}
{%- endmacro %}

{% macro time_bin(stride, ts, origin) -%}
    {%- if has_timescaledb() -%}
        time_bucket({{ stride }}, {{ ts }}, {{ origin }})
    {%- else -%}
        date_bin({{ stride }}, {{ ts }}, {{ origin }})
    {%- endif -%}
{%- endmacro %}
