with

source_servers as (
    select * from {{ source('raw', 'hub_servers') }}
),

renamed as (
    select
        collector_run_id,
        user_name as hub_user_name,
        server_name,
        last_activity,
        started,
        pending,
        ready
    from source_servers
)

select * from renamed
