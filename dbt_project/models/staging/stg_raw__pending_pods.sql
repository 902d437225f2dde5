with

source_pending as (
    select * from {{ source('raw', 'pending_pods') }}
),

renamed as (
    select
        "timestamp" as observed_at,  -- noqa: RF06
        cluster,
        namespace,
        pod_name,
        pod_uid,
        user_email,
        container_image,
        node_name,
        age_seconds,
        phase,
        reason,
        collector_run_id
    from source_pending
)

select * from renamed
