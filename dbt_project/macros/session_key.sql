{#- The session key (spec 4), declared once. user_sessions carries it in its config (meta.session_key),
    the replace_from strategy reads it from there, and the overlap test and indexes use it.
    Rows from before adoption have no cluster or namespace: those two compare null-safely. -#}
{% macro session_key() -%}
    {{ return(['cluster', 'namespace', 'user_email', 'pod_name', 'node_name']) }}
{%- endmacro %}

{% macro session_key_nullable_columns() -%}
    {{ return(['cluster', 'namespace']) }}
{%- endmacro %}

{#- The key columns an index can serve: `is not distinct from` is not indexable, so indexes on the
    key lead with the never-null columns, and cluster and namespace are filtered after. -#}
{% macro session_key_indexed_columns() -%}
    {{ return(session_key() | reject('in', session_key_nullable_columns()) | list) }}
{%- endmacro %}

{#- "left and right have the same key": `=` where the column is never null (so indexes serve it),
    `is not distinct from` where it may be. -#}
{% macro session_key_matches(left, right, key=none) -%}
    {%- for column in (key or session_key()) %}
        {%- set equals = 'is not distinct from' if column in session_key_nullable_columns() else '=' %}
        {{ left }}.{{ column }} {{ equals }} {{ right }}.{{ column }}
        {%- if not loop.last %} and{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- A node is named within its cluster: `cluster/node`, or the bare node name where no cluster was recorded. -#}
{% macro node_key(cluster, node_name) -%}
    concat_ws('/', {{ cluster }}, {{ node_name }})
{%- endmacro %}
