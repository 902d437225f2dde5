{% test non_negative(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} < 0
{% endtest %}

{% test unique_combination(model, columns) %}
    select {{ columns | join(', ') }}
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{#- Resources and hours: a number a person could have meant. NaN and infinities are stored by numeric
    and double precision, and sort above every number, so they are named here. -#}
{% test finite_non_negative(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where
        {{ column_name }} < 0
        or {{ column_name }}::text in ('NaN', 'Infinity', '-Infinity')
{% endtest %}

{% test at_most(model, column_name, maximum) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} > {{ maximum }}
{% endtest %}
