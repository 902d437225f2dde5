{#- The idle rule (spec 4, docs block idle_rule): the stretch between two consecutive observations of a
    session is idle when the notebook's measured CPU use was below the threshold at both; its length in
    seconds (numeric, exact, so sums are the same however they are grouped), else 0, null when unmeasured. -#}
{% macro idle_seconds(stretch, cpu_before, cpu_after, below) -%}
    case
        when {{ cpu_before }} is null or {{ cpu_after }} is null then null
        when {{ cpu_before }} < {{ below }} and {{ cpu_after }} < {{ below }} then extract(epoch from {{ stretch }})
        else 0
    end
{%- endmacro %}

{#- Sum of values that may be null: null only when all are (an exact running total kept in a stored row). -#}
{% macro sum_of_known() -%}
    case
        when {% for value in varargs %}{{ value }} is null{% if not loop.last %} and {% endif %}{% endfor %} then null
        else {% for value in varargs %}coalesce({{ value }}, 0){% if not loop.last %} + {% endif %}{% endfor %}
    end
{%- endmacro %}
