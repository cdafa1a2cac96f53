{{
    config(
        materialized='incremental',
        unique_key=['market', 'symbol', 'interval', 'open_time'],
        incremental_strategy='append',
        pre_hook="{{ apply_increment() }}",
        on_schema_change='fail',
        indexes=[
            {'columns': ['market', 'symbol', 'interval', 'open_time'], 'unique': true},
            {'columns': ['ingested_at']},
            {'columns': ['open_time']},
        ],
    )
}}
-- No (market, interval, open_time) index (see marts.candles): it would compete with the
-- key for one series' range reads (the dashboard's feature probes).
-- The model features of every on-grid candle (macro candle_features). Incremental:
-- the spans of marts.candles that changed since the last run (raw's change log, up to
-- marts.candles' watermark) and the `feature_lookback_bars` bars after them are
-- deleted and recomputed, reading `feature_lookback_bars` bars before them (the
-- longest window), so the rows equal what a full refresh yields; a BTCUSDT change also
-- recomputes every series of its market and interval there (btc_log_return_1), each
-- named (macro with_every_symbol) so that the key serves every read and the delete.

{%- set lookback = var('feature_lookback_bars') %}

with

{%- set changes = pending_changes(upstream='candles') %}
{%- set changed = candle_ranges(changes.ranges) %}
{#- A candle change reaches the features of the next `lookback` bars; a BTCUSDT change
    those of every series of its market and interval (btc_log_return_1), listed from
    marts.candles by key at compile time (this model runs after it). -#}
{%- set btc_changed = [] %}
{%- for r in (changed or []) if r.symbols is not none and 'BTCUSDT' in r.symbols %}
    {%- do btc_changed.append(r) %}
{%- endfor %}
{%- set affected = none if changed is none else shift_ranges(merge_ranges(
    changed + with_every_symbol(btc_changed, ref('candles'))), after=lookback) %}
{%- set read = shift_ranges(affected, before=lookback) %}
{% if is_incremental() %}
scope as (

    -- Each affected span from `lookback` bars before it, and BTCUSDT over the same
    -- spans, read by key; the pre-hook deleted the affected spans from this table.
    select *
    from {{ ref('candles') }}
    where {{ in_ranges(merge_ranges(read + with_symbols(read, ['BTCUSDT']))) }}

),
{% else %}
scope as (

    select * from {{ ref('candles') }}

),
{% endif %}

features as (

    {{ candle_features('scope') }}

)

select features.*
from features
{% if is_incremental() %}
where {{ in_ranges(affected) }}
{% endif %}
{{ increment_marker(changes, affected) }}
