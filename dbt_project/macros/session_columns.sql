{#- The session columns (spec 4), declared once. Each entry names a column of user_sessions and how it is made
    from a session's observations; every path of the model (a full build, an incremental recomputation, the
    extension of an open session by new observations) and the per-day parts are rendered from this list, so a new
    column is one line here (and its description in _marts__models.yml).

    kind          the column is                                      an extension by new observations gives
    count  (of)   the number of observations with `of` known ('*':   stored + new
                  all)
    sum    (of)   the sum of `of`, null when none is known           stored + new (null only when both are)
    max/min (of)  the largest/smallest `of`                          greatest/least of stored and new
    last   (of)   `of` at the session's last observation             the new last
    last_known    the latest known `of`                              the new latest known, else the stored one
    mode   (of)   the most frequent known `of` (ties: the first in   the stored one; the session extends only
                  sort order)                                        while the new values agree with it
    stretch       seconds between consecutive observations for       stored + new stretches + the stretch from
           (rule) which the rule holds (stretch_rules); null where   the stored last observation to the first
                  never known; also split by day (session_days)      new one
    derived (sql) an expression of the columns above

    `agree: true` (last_known) also extends a session only while the new values agree with the stored one.
    The session's bounds (session_start, session_end) and its key (session_key) are not in the list. -#}
{% macro session_columns() %}
    {%- set runtime_hours = hours_between('session_start', 'session_end') -%}
    {%- set node_type = gpu_or_cpu('gpu_count', 'node_name') -%}
    {%- set average_cpu = mean_of('cpu_usage_cores_sum', 'measured_observation_count') -%}
    {%- set average_gpu = mean_of('gpu_utilization_sum', 'gpu_measured_observation_count') -%}
    {{ return([
        {'name': 'user_name', 'kind': 'last_known', 'of': 'user_name'},
        {'name': 'server_name', 'kind': 'last', 'of': 'server_name'},
        {'name': 'pod_uid', 'kind': 'last_known', 'of': 'pod_uid', 'agree': true},
        {'name': 'node_type', 'kind': 'derived', 'sql': node_type},
        {'name': 'runtime_hours', 'kind': 'derived', 'sql': runtime_hours},
        {'name': 'gpu_hours', 'kind': 'derived', 'sql': hours_of_node_type('gpu', node_type, runtime_hours)},
        {'name': 'cpu_hours', 'kind': 'derived', 'sql': hours_of_node_type('cpu', node_type, runtime_hours)},
        {'name': 'gpu_device_hours', 'kind': 'derived', 'sql': 'gpu_count * ' ~ runtime_hours},
        {'name': 'container_base', 'kind': 'mode', 'of': 'container_base'},
        {'name': 'container_version', 'kind': 'mode', 'of': 'container_version'},
        {'name': 'gpu_count', 'kind': 'max', 'of': 'gpu_count'},
        {'name': 'cpu_request_cores', 'kind': 'max', 'of': 'cpu_request_cores'},
        {'name': 'memory_request_bytes', 'kind': 'max', 'of': 'memory_request_bytes'},
        {'name': 'observation_count', 'kind': 'count', 'of': '*'},
        {'name': 'measured_observation_count', 'kind': 'count', 'of': 'cpu_usage_cores'},
        {'name': 'cpu_usage_cores_sum', 'kind': 'sum', 'of': 'cpu_usage_cores'},
        {'name': 'avg_cpu_usage_cores', 'kind': 'derived', 'sql': average_cpu},
        {'name': 'cpu_requested_core_hours', 'kind': 'derived', 'sql': times_hours('cpu_request_cores', runtime_hours)},
        {'name': 'cpu_used_core_hours', 'kind': 'derived', 'sql': times_hours(average_cpu, runtime_hours)},
        {'name': 'efficiency_cpu_used_core_hours', 'kind': 'derived', 'sql': when_cpu_efficiency_known(times_hours(average_cpu, runtime_hours))},
        {'name': 'efficiency_cpu_requested_core_hours', 'kind': 'derived', 'sql': when_cpu_efficiency_known(times_hours('cpu_request_cores', runtime_hours))},
        {'name': 'max_memory_usage_bytes', 'kind': 'max', 'of': 'memory_usage_bytes'},
        {'name': 'idle_seconds', 'kind': 'stretch', 'rule': 'cpu_idle'},
        {'name': 'idle_hours', 'kind': 'derived', 'sql': measured_hours('idle_seconds', 'measured_observation_count')},
        {'name': 'gpu_model', 'kind': 'mode', 'of': 'gpu_model'},
        {'name': 'gpu_model_label', 'kind': 'derived', 'sql': when_gpu(node_type, gpu_model_label('gpu_model', 'node_name'))},
        {'name': 'gpu_measured_observation_count', 'kind': 'count', 'of': 'gpu_utilization'},
        {'name': 'gpu_utilization_sum', 'kind': 'sum', 'of': 'gpu_utilization'},
        {'name': 'avg_gpu_utilization', 'kind': 'derived', 'sql': average_gpu},
        {'name': 'max_gpu_memory_used_bytes', 'kind': 'max', 'of': 'gpu_memory_used_bytes'},
        {'name': 'gpu_idle_seconds', 'kind': 'stretch', 'rule': 'gpu_idle'},
        {'name': 'gpu_idle_hours', 'kind': 'derived', 'sql': measured_hours('gpu_idle_seconds', 'gpu_measured_observation_count')},
        {'name': 'idle_signal', 'kind': 'derived', 'sql': idle_signal()},
        {'name': 'idle_gpu_hours', 'kind': 'derived', 'sql': when_gpu(node_type, idle_gpu_hours('idle_seconds', 'gpu_idle_seconds'))},
        {'name': 'efficiency_gpu_used_device_hours', 'kind': 'derived', 'sql': when_gpu_measured(average_gpu ~ ' * ' ~ times_hours('gpu_count', runtime_hours))},
        {'name': 'efficiency_gpu_held_device_hours', 'kind': 'derived', 'sql': when_gpu_measured(times_hours('gpu_count', runtime_hours))},
        {'name': 'pod_created_at', 'kind': 'min', 'of': 'pod_created_at'},
        {'name': 'scheduled_at', 'kind': 'min', 'of': 'scheduled_at'},
        {'name': 'ready_at', 'kind': 'min', 'of': 'ready_at'},
        {'name': 'startup_seconds', 'kind': 'derived', 'sql': seconds_of_start('pod_created_at', 'ready_at')},
        {'name': 'scheduling_seconds', 'kind': 'derived', 'sql': seconds_of_start('pod_created_at', 'scheduled_at')},
        {'name': 'start_seconds', 'kind': 'derived', 'sql': seconds_of_start('scheduled_at', 'ready_at')},
        {'name': 'hub_observation_count', 'kind': 'count', 'of': 'hub_last_activity'},
        {'name': 'active_seconds', 'kind': 'stretch', 'rule': 'active'},
        {'name': 'active_hours', 'kind': 'derived', 'sql': measured_hours('active_seconds', 'hub_observation_count')},
        {'name': 'last_collector_run_id', 'kind': 'max', 'of': 'collector_run_id'},
    ]) }}
{% endmacro %}

{#- The stretch rules: a stretch (two consecutive observations of a session) counts when the rule holds for the
    values of `input` at both ends; unknown when either is unknown. -#}
{% macro stretch_rules() %}
    {{ return({
        'cpu_idle': {'input': 'cpu_usage_cores', 'holds': 'both_below', 'threshold': var('idle_cpu_cores') | float},
        'gpu_idle': {'input': 'gpu_utilization', 'holds': 'both_below', 'threshold': var('idle_gpu_utilization') | float},
        'active': {'input': 'hub_last_activity', 'holds': 'advanced'},
    }) }}
{% endmacro %}

{#- true, false, or null where either end is unknown. One line, so the SQL around it keeps its layout. -#}
{% macro stretch_holds(rule_name, before, after) -%}
    {%- set rule = stretch_rules()[rule_name] -%}
    {%- if rule.holds == 'both_below' -%}
        {%- set holds = before ~ ' < ' ~ rule.threshold ~ ' and ' ~ after ~ ' < ' ~ rule.threshold -%}
    {%- elif rule.holds == 'advanced' -%}
        {%- set holds = after ~ ' > ' ~ before -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("stretch rule " ~ rule_name ~ " holds neither both_below nor advanced") }}
    {%- endif -%}
    case when {{ before }} is null or {{ after }} is null then null else {{ holds }} end
{%- endmacro %}

{#- Seconds of a stretch (or of its part within a day) that count under the rule: its length, 0, or null. Numeric
    and exact, so sums are the same however they are grouped. -#}
{% macro stretch_seconds(rule_name, before, after, length) -%}
    {%- set holds = stretch_holds(rule_name, before, after) -%}
    case ({{ holds }}) when true then extract(epoch from {{ length }}) when false then 0 end
{%- endmacro %}

{#- The entries stored in the table: every kind but derived, plus the value of each stretch rule's input at the
    session's last observation (last_<input>), which an extension's first stretch needs. -#}
{% macro stored_session_columns() %}
    {%- set stored = session_columns() | rejectattr('kind', 'equalto', 'derived') | list -%}
    {%- for input in stretch_inputs() -%}
        {%- do stored.insert(stored | length - 1, {'name': 'last_' ~ input, 'kind': 'last', 'of': input}) -%}
    {%- endfor -%}
    {{ return(stored) }}
{% endmacro %}

{% macro stretch_columns() %}
    {{ return(session_columns() | selectattr('kind', 'equalto', 'stretch') | list) }}
{% endmacro %}

{#- The inputs of the stretch rules, in the rules' order (from the rules, not the column list: rendering a model
    asks for them often, and the column list is the dearest macro to render). -#}
{% macro stretch_inputs() %}
    {%- set inputs = [] -%}
    {%- for rule in stretch_rules().values() -%}
        {%- if rule.input not in inputs %}{% do inputs.append(rule.input) %}{% endif -%}
    {%- endfor -%}
    {{ return(inputs) }}
{% endmacro %}

{#- What an aggregate over observation rows gives for a stored column. In `recompute` form (a whole session, rows
    carrying session_start_marker and previous_<input>), or over only the new observations of an open session
    (rows carrying previous_<input> from the new rows alone). -#}
{% macro session_aggregate(column, form) -%}
    {%- if column.kind == 'count' -%} count({{ column.of }})
    {%- elif column.kind in ('sum', 'max', 'min') -%} {{ column.kind }}({{ column.of }})
    {%- elif column.kind == 'last' -%} (array_agg({{ column.of }} order by observed_at desc))[1]
    {%- elif column.kind == 'last_known' -%}
        (array_agg({{ column.of }} order by observed_at desc) filter (where {{ column.of }} is not null))[1]
    {%- elif column.kind == 'mode' and form == 'recompute' -%} mode() within group (order by {{ column.of }})
    {%- elif column.kind == 'mode' -%} min({{ column.of }})
    {%- elif column.kind == 'stretch' -%}
        {%- set input = stretch_rules()[column.rule].input -%}
        {%- set length = 'observed_at - previous_observed_at' -%}
        {%- set seconds = stretch_seconds(column.rule, 'previous_' ~ input, input, length) -%}
        {#- The first observation of a session opens no stretch (its predecessor, if any, is another session's). -#}
        {%- if form == 'recompute' -%}
            sum(case when session_start_marker = 0 then {{ seconds }} end)
        {%- else -%}
            sum({{ seconds }})
        {%- endif -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("session column " ~ column.name ~ " has an unknown kind " ~ column.kind) }}
    {%- endif -%}
{%- endmacro %}

{#- Whether a column needs the new observations to agree with the stored value for the session to extend. -#}
{% macro must_agree(column) -%}
    {{ return(column.kind == 'mode' or column.get('agree', false)) }}
{%- endmacro %}

{#- The new observations hold no value of the column, or one, equal to the stored one (or the stored one is
    unknown). One line. -#}
{% macro new_values_agree(column) -%}
    {%- set values, open, new = 'new_' ~ column.name ~ '_values', 'open_' ~ column.name, 'new_' ~ column.name -%}
    ({{ values }} = 0 or ({{ values }} = 1 and ({{ open }} is null or {{ open }} = {{ new }})))
{%- endmacro %}

{#- The stored session extended by new observations: `open_<name>` is the stored value, `new_<name>` the new
    observations' aggregate, and for stretches `open_last_<input>`, `first_<input>` and `junction` the stretch from
    the stored last observation to the first new one. -#}
{% macro session_merge(column, junction='null') -%}
    {%- set open, new = 'open_' ~ column.name, 'new_' ~ column.name -%}
    {%- if column.kind == 'count' -%} {{ open }} + {{ new }}
    {%- elif column.kind == 'sum' -%} {{ sum_of_known(open, new) }}
    {%- elif column.kind == 'max' -%} greatest({{ open }}, {{ new }})
    {%- elif column.kind == 'min' -%} least({{ open }}, {{ new }})
    {%- elif column.kind == 'last' -%} {{ new }}
    {%- elif column.kind == 'last_known' -%} coalesce({{ new }}, {{ open }})
    {%- elif column.kind == 'mode' -%} coalesce({{ open }}, {{ new }})
    {%- elif column.kind == 'stretch' -%}
        {%- set input = stretch_rules()[column.rule].input -%}
        {{ sum_of_known(open, new, stretch_seconds(column.rule, 'open_last_' ~ input, 'first_' ~ input, junction)) }}
    {%- endif -%}
{%- endmacro %}

{#- Sum of values that may be null: null only when all are (an exact running total kept in a stored row). -#}
{% macro sum_of_known() -%}
    {%- set unknown, known = [], [] -%}
    {%- for value in varargs -%}
        {%- do unknown.append(value ~ ' is null') -%}
        {%- do known.append('coalesce(' ~ value ~ ', 0)') -%}
    {%- endfor -%}
    case when {{ unknown | join(' and ') }} then null else {{ known | join(' + ') }} end
{%- endmacro %}

{#- The session rule (docs block session_rule): an observation starts a session when it has no predecessor, comes
    more than the session gap after it, or carries another pod uid (where both are recorded). -#}
{% macro starts_a_session(step, pod_uid, previous_pod_uid) -%}
    case
        when {{ step }} is null then 1
        when {{ step }} > {{ session_gap() }} then 1
        when {{ pod_uid }} <> {{ previous_pod_uid }} then 1
        else 0
    end
{%- endmacro %}

{% macro session_gap() -%}
    interval '{{ var("session_gap_minutes") | int }} minutes'
{%- endmacro %}

{#- A session's id: md5 of its key and start. Stable while the session's start does not change; concat_ws skips
    nulls, so sessions from before adoption (no cluster or namespace) keep the ids they had. -#}
{% macro session_id(start='session_start') -%}
    md5(
        concat_ws(
            '|',
            user_email,
            pod_name,
            node_name,
            to_char({{ start }} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
            'cluster=' || cluster,
            'namespace=' || namespace
        )
    )
{%- endmacro %}

{% macro hours_between(start, end) -%}
    (extract(epoch from {{ end }} - {{ start }}) / 3600.0)::double precision
{%- endmacro %}

{#- Which measurement says when a session was idle (idle_rule): the GPU itself where DCGM measured it, else the CPU
    proxy where the metrics API did, else none (null). For a GPU session, idle_gpu_hours follows it. -#}
{% macro idle_signal() -%}
    case when gpu_measured_observation_count > 0 then 'gpu' when measured_observation_count > 0 then 'cpu' end
{%- endmacro %}

{% macro idle_gpu_hours(cpu_idle_seconds, gpu_idle_seconds) -%}
    case {{ idle_signal() }}
        when 'gpu' then coalesce({{ gpu_idle_seconds }}, 0) / 3600.0
        when 'cpu' then coalesce({{ cpu_idle_seconds }}, 0) / 3600.0
    end
{%- endmacro %}

{#- GPU efficiency's parts (efficiency_rule): device-hours used (mean utilisation x GPUs x hours) and held (GPUs x
    hours), counted where the GPU was measured. -#}
{% macro when_gpu_measured(value) -%}
    case when gpu_measured_observation_count > 0 and gpu_count > 0 then {{ value }} end
{%- endmacro %}

{#- The GPU classes the predecessor named nodes after (user_session_stats has hours per class), declared once. -#}
{% macro gpu_model_classes() %}
    {{ return(['v100', 'a100', 'h100', 'h200']) }}
{% endmacro %}

{#- A GPU session's model for reports: the model where known (DCGM, or the node's label), else the class its node's
    name says (`A100 (node name)`), else `unknown`. -#}
{% macro gpu_model_label(gpu_model, node_name) -%}
    coalesce({{ gpu_model }}, case
        {%- for class in gpu_model_classes() %}
        when strpos(lower({{ node_name }}), '{{ class }}') > 0 then '{{ class | upper }} (node name)'
        {%- endfor %}
        else 'unknown'
    end)
{%- endmacro %}

{#- The predecessor's class of a GPU model label (v100, a100, h100, h200), else `other`. -#}
{% macro gpu_model_class(label) -%}
    case
        {%- for class in gpu_model_classes() %}
        when strpos(lower({{ label }}), '{{ class }}') > 0 then '{{ class }}'
        {%- endfor %}
        else 'other'
    end
{%- endmacro %}

{#- Start-up (docs block startup_rule): seconds from one moment of the pod's start to another, for the session that
    began with the pod's start (its first observation within the session gap of the pod becoming ready); null for
    later sessions of a long-lived pod, and where a moment is unknown. -#}
{% macro seconds_of_start(from_moment, to_moment) -%}
    case
        when session_start <= ready_at + {{ session_gap() }} and {{ to_moment }} >= {{ from_moment }}
            then extract(epoch from {{ to_moment }} - {{ from_moment }})
    end
{%- endmacro %}

{#- A value of GPU sessions only (null for CPU sessions). -#}
{% macro when_gpu(node_type, value) -%}
    case when {{ node_type }} = 'gpu' then {{ value }} end
{%- endmacro %}

{#- The GPU/CPU split (node_rule): the hours when the node type is `kind`, else 0. -#}
{% macro hours_of_node_type(kind, node_type, hours) -%}
    case when {{ node_type }} = '{{ kind }}' then {{ hours }} else 0 end
{%- endmacro %}

{% macro mean_of(total, count) -%}
    {{ total }} / nullif({{ count }}, 0)
{%- endmacro %}

{#- Hours of a stretch sum where its input was ever measured (0 when measured and never true), null where not. -#}
{% macro measured_hours(seconds, measured_count) -%}
    case when {{ measured_count }} > 0 then coalesce({{ seconds }}, 0) / 3600.0 end
{%- endmacro %}

{#- Efficiency (docs block efficiency_rule): used over held, counted only where both are known. Sessions and days
    carry the parts (efficiency_cpu_used_core_hours and efficiency_cpu_requested_core_hours; the GPU's
    efficiency_gpu_used_device_hours and efficiency_gpu_held_device_hours; null where unknown), so every report, a
    dashboard's too, divides their sums and applies no filter of its own. -#}
{% macro efficiency(used, held) -%}
    sum({{ used }}) / nullif(sum({{ held }}), 0)
{%- endmacro %}

{% macro when_cpu_efficiency_known(value) -%}
    case when measured_observation_count > 0 and cpu_request_cores > 0 then {{ value }} end
{%- endmacro %}

{#- A quantity (cores, GPUs) held for the session's hours, as numeric. -#}
{% macro times_hours(quantity, hours) -%}
    {{ quantity }} * ({{ hours }})::numeric
{%- endmacro %}
