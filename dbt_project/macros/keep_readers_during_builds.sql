{#- A build never takes a dashboard's relation away, nor its readers' grants (docs block readers_during_builds).
    dbt replaces a table or view by building it aside, swapping the names, and dropping the old one with CASCADE,
    which drops every view that reads it; those views came back only when the run reached them, so between the drop
    and their turn (minutes in a complete build) panels failed, and a run that failed or was killed before their
    turn left them missing. A seed loaded with --full-refresh did the same (postgres__reset_csv_table, below).

    Here the old relation's dependent views are first pointed at the new one, each by CREATE OR REPLACE VIEW with
    its own definition (PostgreSQL keeps the view, its grants and whatever reads it): they answer from the old
    relation until that moment and from the new one after, never missing. Only a view whose columns no longer fit
    the new relation (a column removed or retyped by an upgrade) is dropped as before, and re-created when the run
    reaches it. Re-pointing and the drop are one statement, committed as dbt commits its drop. And the new relation
    takes the old one's grants in the statement that gives it the name, so the read-only role never meets a
    relation it may not read (on-run-end grants it the dashboards' relations again, as before). -#}

{% macro postgres__rename_relation(from_relation, to_relation) -%}
    {#- Called through the adapter, where no `this` is known: the names say which relation is which. -#}
    {%- set takes_the_name = from_relation.identifier == to_relation.identifier ~ '__dbt_tmp' -%}
    {%- set previous = to_relation.incorporate(path={"identifier": to_relation.identifier ~ '__dbt_backup'}) -%}
    {% call statement('rename_relation') -%}
        alter table {{ from_relation.render() }}
        rename to {{ adapter.quote_as_configured(to_relation.identifier, 'identifier') }}
        {%- if takes_the_name %};
        do $grants$
        declare
            privilege record;
        begin
            for privilege in
                select granted.privilege_type, granted.grantee
                from pg_class as previous, aclexplode(previous.relacl) as granted
                where
                    previous.oid = to_regclass({{ regclass_literal(previous) }})
                    and granted.grantee != previous.relowner
            loop
                execute format(
                    'grant %s on %s to %s',
                    privilege.privilege_type,
                    {{ regclass_literal(to_relation) }},
                    case when privilege.grantee = 0 then 'public' else privilege.grantee::regrole::text end
                );
            end loop;
        end
        $grants$
        {%- endif %}
    {%- endcall %}
{% endmacro %}

{% macro postgres__drop_relation(relation) -%}
    {%- set replaced = relation.identifier.endswith('__dbt_backup') -%}
    {%- set current = relation.incorporate(path={"identifier": relation.identifier[:-12]}) if replaced else none -%}
    {%- if not replaced -%}
        {% call statement('drop_relation', auto_begin=False) -%}
            {{ get_drop_sql(relation) }}
        {%- endcall %}
    {%- else -%}
        {% call statement('drop_relation', auto_begin=False) -%}
            do $repoint$
            declare
                dependent record;
                session_lock_timeout text := current_setting('lock_timeout');
            begin
                -- One re-pointing at a time (threads replace relations that one view may read two of); each view
                -- before the relation below it, in the order a reader of the view locks them.
                perform pg_advisory_xact_lock(7361004);
                -- A reader of a view locks it, then what it reads; this takes the views, then the old relation. A
                -- reader between the two would wait for one while holding the other: each try waits a moment only
                -- and, if it cannot have every lock, gives back what it took (its block is undone) and tries again,
                -- so a reader never waits in a deadlock (the server would end its query). After many tries, waits.
                for attempt in 1..400 loop
                    begin
                        if attempt < 400 then
                            perform set_config('lock_timeout', '50ms', true);
                        else
                            perform set_config('lock_timeout', session_lock_timeout, true);
                        end if;
                        for dependent in select * from {{ dependent_views_sql(relation) }} as d order by view_oid loop
                            begin
                                execute format(
                                    'create or replace view %s as %s',
                                    dependent.view_name,
                                    replace(dependent.definition, {{ dbt.string_literal(relation.identifier) }},
                                        {{ dbt.string_literal(current.identifier) }})
                                );
                            exception
                                when lock_not_available then raise;
                                when others then
                                    raise warning '% no longer fits %; dropped, and re-created when the run reaches'
                                        ' it: %', dependent.view_name, {{ regclass_literal(current) }}, sqlerrm;
                            end;
                        end loop;
                        execute {{ dbt.string_literal(get_drop_sql(relation)) }};
                        perform set_config('lock_timeout', session_lock_timeout, true);
                        exit;
                    exception when lock_not_available then
                        perform pg_sleep(0.005 * attempt % 0.1);
                    end;
                end loop;
            end
            $repoint$
        {%- endcall %}
        {#- dbt's cache dropped the views with the old relation: those now reading the new one are added back, so
            that their own turn in the run replaces them rather than creating them beside themselves. -#}
        {%- set kept = run_query(dependent_views_sql(current, definitions=false)) -%}
        {%- for schema, name, _ in kept.rows -%}
            {%- do adapter.cache_added(api.Relation.create(
                database=current.database, schema=schema, identifier=name, type='view')) -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}

{#- The views that read `relation` directly; with their definitions (pg_get_viewdef, which locks each view), or
    only their names. -#}
{% macro dependent_views_sql(relation, definitions=true) -%}
    (
        select distinct
            view_namespace.nspname as view_schema,
            view_class.relname as view_identifier,
            view_class.oid as view_oid
            {%- if definitions %},
            view_class.oid::regclass::text as view_name,
            pg_get_viewdef(view_class.oid) as definition
            {%- endif %}
        from pg_depend as dependency
        inner join pg_rewrite as view_rule on dependency.objid = view_rule.oid
        inner join pg_class as view_class on view_rule.ev_class = view_class.oid
        inner join pg_namespace as view_namespace on view_class.relnamespace = view_namespace.oid
        where
            dependency.classid = 'pg_rewrite'::regclass
            and dependency.refclassid = 'pg_class'::regclass
            and dependency.refobjid = to_regclass({{ regclass_literal(relation) }})
            and view_class.oid != dependency.refobjid
            and view_class.relkind = 'v'
    )
{%- endmacro %}

{% macro regclass_literal(relation) -%}
    {{ dbt.string_literal(adapter.quote(relation.schema) ~ '.' ~ adapter.quote(relation.identifier)) }}
{%- endmacro %}

{#- A seed loaded with --full-refresh is dropped and created again, and its CASCADE takes every view above it (the
    cost and term views, and the department, group and term marts): while its columns stay the same, it is emptied
    and filled in its transaction instead, as a run without --full-refresh does. -#}
{% macro postgres__reset_csv_table(model, full_refresh, old_relation, agate_table) %}
    {%- set existing = adapter.get_columns_in_relation(old_relation) | map(attribute='name') | list -%}
    {%- set same_columns = existing == (agate_table.column_names | list) -%}
    {{ return(dbt.default__reset_csv_table(model, full_refresh and not same_columns, old_relation, agate_table)) }}
{% endmacro %}
