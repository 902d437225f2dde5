{#- The dashboards' read-only role may read exactly the relations the dashboards read: the depends_on of
    the dashboard exposures (generated from the dashboards' SQL). Tables that dbt rebuilds lose their grants,
    so this runs at the end of every dbt run or build (on-run-end), and from `jupyterhub-metrics db
    readonly-role`. Nothing happens where the role does not exist (a database without dashboards). -#}
{% macro grant_dashboard_reads(role=none) %}
    {%- set role = role or env_var('READONLY_DB_USER', 'grafana_reader') -%}
    {%- if execute -%}
        {%- set found = run_query("select 1 from pg_roles where rolname = " ~ dbt.string_literal(role)) -%}
        {%- if found.rows | length > 0 -%}
            {%- set relations = [] -%}
            {%- for exposure in graph.exposures.values() if exposure.type == 'dashboard' -%}
                {%- for unique_id in exposure.depends_on.nodes -%}
                    {%- set node = graph.nodes.get(unique_id) or graph.sources.get(unique_id) -%}
                    {%- set name = node.alias or node.identifier or node.name -%}
                    {%- set relation = adapter.get_relation(node.database, node.schema, name) -%}
                    {%- if relation is not none and relation not in relations -%}
                        {%- do relations.append(relation) -%}
                    {%- endif -%}
                {%- endfor -%}
            {%- endfor -%}
            {%- for relation in relations -%}
                {%- set schema = adapter.quote(relation.schema) -%}
                {%- do run_query("grant usage on schema " ~ schema ~ " to " ~ adapter.quote(role)) -%}
                {%- do run_query("grant select on " ~ relation ~ " to " ~ adapter.quote(role)) -%}
            {%- endfor -%}
            {%- do run_query("commit") -%}
            {{ log("granted select on " ~ (relations | length) ~ " dashboard relations to " ~ role, info=false) }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
