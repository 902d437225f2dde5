{#- The dashboards' read-only role may read exactly the relations the dashboards read: the depends_on of
    the dashboard exposures (generated from the dashboards' SQL). Tables that dbt rebuilds lose their grants,
    so this runs at the end of every dbt run or build (on-run-end), and from `jupyterhub-metrics db
    readonly-role`. Nothing happens where the role does not exist (a database without dashboards).

    On a Citus coordinator the workers check the reader's own privileges on the shards of the distributed tables
    that a view reads (Citus treats every view as security invoker: citusdata/citus#1683), so there the role also
    reads the distributed raw tables under the dashboards' views, and only those (distributed_tables_read_by). -#}
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
            {%- set read_through_views = distributed_tables_read_by(relations) -%}
            {%- for relation in relations + read_through_views -%}
                {%- set schema = adapter.quote(relation.schema) -%}
                {%- do run_query("grant usage on schema " ~ schema ~ " to " ~ adapter.quote(role)) -%}
                {%- do run_query("grant select on " ~ relation ~ " to " ~ adapter.quote(role)) -%}
            {%- endfor -%}
            {%- do run_query("commit") -%}
            {{ log("granted select on " ~ (relations | length) ~ " dashboard relations to " ~ role
                ~ (" and on the " ~ (read_through_views | length) ~ " Citus tables their views read"
                   if read_through_views else ""), info=false) }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}

{#- The Citus tables (distributed or reference) that the views among `relations` read, through views and
    ephemeral models. -#}
{% macro distributed_tables_read_by(relations) %}
    {%- if not on_citus() -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set distributed = run_query(
        "select logicalrelid::regclass::text from pg_dist_partition"
    ).columns[0].values() -%}
    {%- set names = relations | map(attribute='identifier') | list -%}
    {%- set pending = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and (node.alias or node.name) in names -%}
        {%- if node.config.materialized in ('view', 'ephemeral') -%}
            {%- do pending.append(node.unique_id) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set seen = [] -%}
    {%- set tables = [] -%}
    {#- A breadth-first walk; Jinja has no while, and no lineage is longer than the graph. -#}
    {%- for _ in range(graph.nodes | length) if pending -%}
        {%- set unique_id = pending.pop() -%}
        {%- do seen.append(unique_id) -%}
        {%- for upstream in (graph.nodes.get(unique_id) or {}).get('depends_on', {}).get('nodes', []) -%}
            {%- set source = graph.sources.get(upstream) -%}
            {%- set model = graph.nodes.get(upstream) -%}
            {%- if source is not none -%}
                {%- set relation = adapter.get_relation(source.database, source.schema, source.identifier) -%}
                {%- if relation is not none and relation.schema ~ '.' ~ relation.identifier in distributed
                    and relation not in tables -%}
                    {%- do tables.append(relation) -%}
                {%- endif -%}
            {%- elif model is not none and model.config.materialized in ('view', 'ephemeral')
                and upstream not in seen and upstream not in pending -%}
                {%- do pending.append(upstream) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(tables) }}
{% endmacro %}
