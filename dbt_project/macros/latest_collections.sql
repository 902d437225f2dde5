{#- Per cluster, the time of its latest successful collection: what "now" means for pending pods (failed_starts,
    pending_now). -#}
{% macro latest_collections() -%}
    select
        cluster,
        max(observed_at) as latest_collection
    from {{ ref('stg_raw__collector_runs') }}
    where run_kind = 'collect' and run_status = 'succeeded'
    group by cluster
{%- endmacro %}
