{#- What the last complete build built, so that `jupyterhub-metrics build` can run only the `cycle` selector after
    each collection (views and seeds change only with the project's files and rules). The loader passes the
    fingerprint of those files and rules in JHM_PROJECT_FINGERPRINT. Any build, run, seed or snapshot other than the
    cycle forgets the recorded build when it starts (it may re-create views from other files or rules); one that
    ends with every model, seed and snapshot built records the fingerprint it was given. A plain `dbt build` is
    given none, so the loader's next build is complete again. -#}

{% macro complete_build_table() -%}
    {{ target.schema }}.complete_build
{%- endmacro %}

{% macro changes_relations() -%}
    {%- set is_cycle = invocation_args_dict.get('selector') == 'cycle' -%}
    {{ return(flags.WHICH in ('build', 'run', 'seed', 'snapshot') and not is_cycle) }}
{%- endmacro %}

{% macro forget_complete_build() %}
    {% if execute and changes_relations() %}
        create table if not exists {{ complete_build_table() }} (
            fingerprint text not null,
            finished_at timestamptz not null
        );
        delete from {{ complete_build_table() }};
    {% endif %}
{% endmacro %}

{% macro record_complete_build(results) %}
    {% set fingerprint = env_var('JHM_PROJECT_FINGERPRINT', '') %}
    {% if execute and changes_relations() and fingerprint %}
        {% set succeeded = [] %}
        {% for result in results if result.status in ('success', 'pass') %}
            {% do succeeded.append(result.node.unique_id) %}
        {% endfor %}
        {% set missing = [] %}
        {% for node in graph.nodes.values()
            if node.resource_type in ('model', 'seed', 'snapshot') and node.config.materialized != 'ephemeral'
                and node.unique_id not in succeeded %}
            {% do missing.append(node.unique_id) %}
        {% endfor %}
        {% if not missing %}
            insert into {{ complete_build_table() }} (fingerprint, finished_at) values ('{{ fingerprint }}', now());
        {% endif %}
    {% endif %}
{% endmacro %}
