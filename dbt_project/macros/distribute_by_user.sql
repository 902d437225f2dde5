{#- Past one node (spec 3.2, docs block past_one_node): on a Citus coordinator, a per-user model's table is
    distributed by its user column, co-located with the raw tables (bootstrap_sql/repeatable/distributed_tables.sql),
    so that what one person did lives on one worker beside their observations: an incremental run's statements join
    shards of one worker and are pushed down there. A post-hook of every such model: dbt makes the table anew on a
    full build (or the first), and this distributes it before dbt commits, so a reader never sees it local; a table
    already distributed (an incremental run) is left as it is. The rows dbt wrote before distributing are copied
    into the shards and the coordinator's local copy (derived rows, unreadable once distributed) is emptied.
    On any other server, nothing happens. -#}
{% macro distribute_by_user(column='user_email') %}
    do $distribute$
    begin
        if exists (select from pg_extension where extname = 'citus') then
            if not exists (
                select from pg_catalog.pg_dist_partition where logicalrelid = {{ regclass_literal(this) }}::regclass
            ) then
                perform create_distributed_table(
                    {{ regclass_literal(this) }}::regclass,
                    {{ dbt.string_literal(column) }},
                    colocate_with => {{ dbt.string_literal(source('raw', 'container_observations') | string) }}
                );
                perform truncate_local_data_after_distributing_table({{ regclass_literal(this) }}::regclass);
            end if;
        end if;
    end
    $distribute$
{% endmacro %}

{#- Is this build running on a Citus coordinator? Asked where a model is rendered (never while parsing). -#}
{% macro on_citus() %}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {{ return(run_query("select 1 from pg_extension where extname = 'citus'").rows | length > 0) }}
{% endmacro %}

{#- For the CTEs of the incremental models: on Citus, a CTE that PostgreSQL would compute once (one named twice) is
    planned by Citus as a result gathered on the coordinator, which then cannot be joined on the workers (LATERAL
    above all): there every CTE is inlined, so that the whole statement, co-located by the user, runs on the
    workers. On one node PostgreSQL chooses, as before. -#}
{% macro inlined_on_citus() -%}
    {%- if on_citus() %}not materialized{% endif -%}
{%- endmacro %}
