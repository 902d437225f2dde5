-- Marts behind the collections: a succeeded collection more than two cycles old (15 minutes) that no build since
-- has read, because builds fail or stopped running (the CronJob's build step, a bad seed, a broken upgrade). The
-- dashboards still answer, with the numbers of the last build that finished (macro record_published_build); this
-- says they are getting old. A warning in a plain `dbt build`; `jupyterhub-metrics check` makes it an error.
{{ config(severity=var('cluster_freshness_severity', 'warn')) }}

with

last_published as (
    select coalesce(max(runs_through), 0) as runs_through
    from {{ published_build_table() }}
)

select
    runs.collector_run_id,
    runs.cluster,
    runs.finished_at
from {{ ref('stg_raw__collector_runs') }} as runs
cross join last_published
where
    runs.run_kind = 'collect'
    and runs.run_status = 'succeeded'
    and runs.finished_at < now() - interval '15 minutes'
    and runs.collector_run_id > last_published.runs_through
