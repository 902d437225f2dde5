-- Every observation: container_observations and its overflow table (the second of two pods with
-- the same user, pod name and time, from another hub; see bootstrap_sql/0003). Same columns.
with

source_observations as (
    select * from {{ source('raw', 'container_observations') }}
),

source_overflow as (
    select * from {{ source('raw', 'container_observations_overflow') }}
),

{%- set columns %}
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
        cpu_usage_cores,
        memory_usage_bytes,
        gpu_utilization,
        gpu_memory_used_bytes,
        gpu_model,
        pod_created_at,
        scheduled_at,
        ready_at,
        collector_run_id
{%- endset %}

renamed as (
    select
        {{- columns }}
    from source_observations

    union all

    select
        {{- columns }}
    from source_overflow
)

select * from renamed
