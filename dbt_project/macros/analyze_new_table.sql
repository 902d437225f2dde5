{#- Statistics for a table that a build made anew (a table model, a seed: dbt creates or truncates them, which
    leaves PostgreSQL no statistics): autovacuum analyses a table only after 50 changed rows, so a seed of five terms
    would never have any, and a dashboard's plan would guess hundreds of rows for it (enough, in a join, to make a
    60 ms query spend 800 ms on JIT compilation). Incremental tables keep theirs and are left to autovacuum (and to
    the ANALYZE that `jupyterhub-metrics build` runs after a build from all history). -#}
{% macro analyze_new_table() %}
    {% if model.resource_type == 'seed' or config.get('materialized') == 'table' %}
        analyze {{ this }}
    {% endif %}
{% endmacro %}
