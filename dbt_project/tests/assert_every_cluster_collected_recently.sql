-- Freshness per cluster: the source freshness of collector_runs passes as long as any one cluster
-- is collected, so every cluster collected in the last 7 days must also have a succeeded
-- collection in the last 60 minutes (the source's error_after). A cluster retired for more than
-- 7 days stops being checked. A warning in a plain `dbt build` (an analyst's copy of yesterday's
-- data is not an error); `jupyterhub-metrics check` makes it an error.
{{ config(severity=var('cluster_freshness_severity', 'warn')) }}

with

last_collections as (
    select
        coalesce(cluster, '(no cluster name)') as cluster,
        max(finished_at) as last_collected_at
    from {{ ref('stg_raw__collector_runs') }}
    where run_kind = 'collect' and run_status = 'succeeded'
    group by coalesce(cluster, '(no cluster name)')
)

select
    cluster,
    last_collected_at
from last_collections
where
    last_collected_at >= now() - interval '7 days'
    and last_collected_at < now() - interval '60 minutes'
