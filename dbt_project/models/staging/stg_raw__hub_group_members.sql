with

source_members as (
    select * from {{ source('raw', 'hub_group_members') }}
),

renamed as (
    select
        collector_run_id,
        group_name,
        user_name as hub_user_name
    from source_members
)

select * from renamed
