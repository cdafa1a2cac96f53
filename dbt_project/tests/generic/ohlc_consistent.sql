{#- Candle invariants: high >= greatest(open, close) and low <= least(open, close). -#}
{% test ohlc_consistent(model) %}
select *
from {{ model }}
where not (high >= greatest(open, close) and low <= least(open, close))
{% endtest %}
