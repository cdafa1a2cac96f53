{#- At most `max_fraction` of the rows have `column_name` NULL (a formula that
    silently went NULL everywhere fails this). -#}
{% test at_most_null_fraction(model, column_name, max_fraction) %}
select count(*) as n_rows, count(*) filter (where {{ column_name }} is null) as n_null
from {{ model }}
having count(*) > 0
   and count(*) filter (where {{ column_name }} is null) > {{ max_fraction }} * count(*)
{% endtest %}
