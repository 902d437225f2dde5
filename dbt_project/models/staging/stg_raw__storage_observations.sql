with

source_storage as (
    select * from {{ source('raw', 'storage_observations') }}
),

renamed as (
    select
        day as storage_day,
        layout,
        cluster,
        namespace,
        volume_name,
        owner_name,
        user_email,
        server_name,
        used_bytes,
        largest_used_bytes,
        capacity_bytes,
        quota_bytes,
        file_count,
        last_modified_at,
        first_observed_at,
        observed_at,
        collector_run_id
    from source_storage
)

select * from renamed
