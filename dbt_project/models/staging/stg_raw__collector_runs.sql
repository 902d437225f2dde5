with

source_runs as (
    select * from {{ source('raw', 'collector_runs') }}
),

renamed as (
    select
        id as collector_run_id,
        kind as run_kind,
        cluster,
        started_at,
        finished_at,
        observed_at,
        status as run_status,
        pods_listed,
        rows_recorded,
        rows_already_recorded,
        pods_skipped,
        skip_reasons,
        error as error_message,
        pending_pods_recorded,
        hub_servers_listed,
        hub_groups_listed,
        hub_memberships_recorded
    from source_runs
)

select * from renamed
