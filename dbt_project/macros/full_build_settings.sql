{#- Session settings for a model's transaction when it builds its whole table (a table
    model, a full refresh, an incremental model's first run): a project-wide pre-hook
    (dbt_project.yml), so `set local` lasts for the create-table-as and the indexes dbt
    creates after it, and no incremental run changes. Sorts and hashes of the whole
    warehouse stay in memory up to var `full_build_work_mem`; JIT is off (compiling
    these plans took longer than running them: ~26 s of 41 s for marts.candles at 1M
    rows); no merge joins (a whole-table join sorts both sides first: candle_features'
    BTCUSDT join sorted all its rows and left the table out of key order, so its key
    index sorted them again; a hash join on the small side keeps the key order); the
    commit does not wait for the WAL flush (a lost full build is rebuilt). -#}
{% macro full_build_settings() -%}
    {%- if execute and config.get("materialized") in ["table", "incremental"]
          and not is_incremental() -%}
    set local jit = off;
    set local work_mem = '{{ var("full_build_work_mem") }}';
    set local maintenance_work_mem = '{{ var("full_build_work_mem") }}';
    set local enable_mergejoin = off;
    set local synchronous_commit = off
    {%- endif -%}
{%- endmacro %}
