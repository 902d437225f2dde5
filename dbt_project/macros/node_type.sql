{#- The node rule (see the node_rule docs block). One definition, used by every model that
    classifies nodes; dashboards read the result from the marts, never re-implement it. -#}
{% macro node_type(node_name) -%}
    {%- set gpu_patterns = var('gpu_node_patterns', '') -%}
    {%- if gpu_patterns is string -%}
        {%- set gpu_patterns = gpu_patterns.split(',') | map('trim') | reject('equalto', '') | list -%}
    {%- endif -%}
    {%- if gpu_patterns | length > 0 -%}
    case
        when
            {%- for pattern in gpu_patterns %}
            strpos(lower({{ node_name }}), lower({{ sql_string(pattern) }})) > 0
            {%- if not loop.last %} or{% endif %}
            {%- endfor %}
            then 'gpu'
        else 'cpu'
    end
    {%- else -%}
    case
        when strpos(lower({{ node_name }}), lower({{ sql_string(var('cpu_node_pattern', 'cpu')) }})) > 0
            then 'cpu'
        else 'gpu'
    end
    {%- endif -%}
{%- endmacro %}

{#- GPU or CPU time (spec 4, revised): what the pod was given decides; the node's name only where that is
    unknown (rows from before adoption carry no GPU request). -#}
{% macro gpu_or_cpu(gpu_count, node_name) -%}
    case
        when {{ gpu_count }} > 0 then 'gpu'
        when {{ gpu_count }} = 0 then 'cpu'
        else {{ node_type(node_name) }}
    end
{%- endmacro %}

{#- A quoted SQL string literal for a project variable. -#}
{% macro sql_string(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}
