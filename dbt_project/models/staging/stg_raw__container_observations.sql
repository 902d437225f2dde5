with

source_observations as (
    select * from {{ source('raw', 'container_observations') }}
),

renamed as (
    select
        "timestamp" as observed_at,  -- noqa: RF06
        user_email,
        user_name,
        node_name,
        container_image,
        container_base,
        coalesce(container_version, 'latest') as container_version,
        age_seconds,
        pod_name,
        cluster,
        namespace,
        pod_uid,
        coalesce(server_name, '') as server_name,
        gpu_count,
        cpu_request as cpu_request_cores,
        memory_request_bytes,
        pod_started_at,
        collector_run_id
    from source_observations
)

select * from renamed
