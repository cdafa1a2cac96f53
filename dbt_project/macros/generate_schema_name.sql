{#- Plain schema names (`staging`, `intermediate`, `marts`) instead of dbt's
    `<target_schema>_<custom>`: the schemas are part of klinehouse's contract. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
