{#- A session belongs to the department (and the hub groups) its user had when it started: a history of versions
    with their validity (int_department_history, int_group_memberships), joined on the user and the session's
    start. One join condition, for every model that attributes sessions or their days. -#}
{% macro held_at_start(history, history_user, user_email, session_start) -%}
    {{ history }}.{{ history_user }} = {{ user_email }}
    and {{ session_start }} >= {{ history }}.valid_from
    and {{ session_start }} < {{ history }}.valid_to
{%- endmacro %}

{#- The rates of a session-day (docs block cost_rule): the day's rate for the session's GPU model (model_rates) and
    its rate for any model (any_model_rates). int_cost_rates refuses overlapping periods of one model, so each join
    finds at most one row: no day row can multiply. -#}
{% macro join_rates_of_day(days) -%}
    left join {{ ref('int_cost_rates') }} as model_rates
        on
            {{ days }}.day >= model_rates.valid_from
            and {{ days }}.day < model_rates.valid_to
            and {{ days }}.gpu_model = model_rates.gpu_model
    left join {{ ref('int_cost_rates') }} as any_model_rates
        on
            {{ days }}.day >= any_model_rates.valid_from
            and {{ days }}.day < any_model_rates.valid_to
            and any_model_rates.gpu_model is null
{%- endmacro %}

{#- What a session-day cost: GPUs x hours x the GPU-hour rate + requested cores x hours x the core-hour rate +
    requested GiB x hours x the GiB-hour rate; the model's price where it gives one, else any model's. Null where no
    rate applies or a request is unknown: never zero. -#}
{% macro cost_of_day(days) -%}
    {{ days }}.gpu_device_hours * coalesce(model_rates.gpu_hour, any_model_rates.gpu_hour)
    + {{ days }}.cpu_requested_core_hours * coalesce(model_rates.cpu_core_hour, any_model_rates.cpu_core_hour)
    + {{ days }}.memory_gib_hours * coalesce(model_rates.memory_gib_hour, any_model_rates.memory_gib_hour)
{%- endmacro %}

{% macro currency_of_day() -%}
    coalesce(model_rates.currency, any_model_rates.currency)
{%- endmacro %}
