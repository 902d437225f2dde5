with

source_names as (
    select * from {{ source('raw', 'hub_names_seen') }}
),

renamed as (
    select
        user_email,
        hub_username as hub_user_name,
        escaped_name,
        first_seen_at,
        collector_run_id
    from source_names
)

select * from renamed
