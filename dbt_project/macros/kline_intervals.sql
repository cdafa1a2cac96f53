{#- Binance intervals in SQL. The lengths mirror klinehouse/klines.py INTERVALS
    (tests/dbt/test_project.py keeps them in sync); 1M is a calendar month.
    All arithmetic is done in UTC and in seconds, so a session time zone with
    daylight saving time cannot shift a bar. -#}

{% macro kline_interval_seconds() -%}
    {{ return({
        "1s": 1, "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800,
        "1h": 3600, "2h": 7200, "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200,
        "1d": 86400, "3d": 259200, "1w": 604800,
    }) }}
{%- endmacro %}

{% macro kline_intervals() -%}
    {{ return(kline_interval_seconds().keys() | list + ["1M"]) }}
{%- endmacro %}

{#- Seconds of a fixed-length interval column (NULL for 1M and unknown strings). -#}
{% macro interval_seconds(interval_col) -%}
    case {{ interval_col }}
    {%- for name, seconds in kline_interval_seconds().items() %}
        when '{{ name }}' then {{ seconds }}
    {%- endfor %}
    end
{%- endmacro %}

{#- The open time `n` bars after `ts` (n may be negative or an expression). -#}
{% macro add_bars(ts, n, interval_col) -%}
    (case
        when {{ interval_col }} = '1M'
            then (({{ ts }} at time zone 'UTC') + make_interval(months => ({{ n }})::int)) at time zone 'UTC'
        else {{ ts }} + ({{ n }}) * {{ interval_seconds(interval_col) }} * interval '1 second'
    end)
{%- endmacro %}

{#- Number of bars from open time `a` to open time `b` of the same series. -#}
{% macro bars_between(a, b, interval_col) -%}
    (case
        when {{ interval_col }} = '1M'
            then ((extract(year from {{ b }} at time zone 'UTC') - extract(year from {{ a }} at time zone 'UTC')) * 12
                  + extract(month from {{ b }} at time zone 'UTC') - extract(month from {{ a }} at time zone 'UTC'))::bigint
        else (extract(epoch from {{ b }} - {{ a }}) / {{ interval_seconds(interval_col) }})::bigint
    end)
{%- endmacro %}

{#- Start of the bar of a literal interval ('4h', '1w', '1M') that contains `ts`:
    epoch-aligned, weeks start on Monday, months on the 1st (UTC). -#}
{% macro bar_start(ts, interval_name) -%}
    {%- if interval_name == "1M" -%}
        (date_trunc('month', {{ ts }} at time zone 'UTC') at time zone 'UTC')
    {%- else -%}
        {%- set seconds = kline_interval_seconds()[interval_name] -%}
        {%- set origin = "1970-01-05 00:00:00+00" if interval_name == "1w" else "1970-01-01 00:00:00+00" -%}
        {{ time_bin("interval '" ~ seconds ~ " seconds'", ts, "timestamptz '" ~ origin ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- Is `ts` on the grid of its interval column? -#}
{% macro is_on_grid(ts, interval_col) -%}
    (case
        when {{ interval_col }} = '1M'
            then date_trunc('month', {{ ts }} at time zone 'UTC') = ({{ ts }} at time zone 'UTC')
        when {{ interval_col }} = '1w'
            then date_bin(interval '604800 seconds', {{ ts }}, timestamptz '1970-01-05 00:00:00+00') = {{ ts }}
        else date_bin({{ interval_seconds(interval_col) }} * interval '1 second', {{ ts }},
                      timestamptz '1970-01-01 00:00:00+00') = {{ ts }}
    end)
{%- endmacro %}
