-- The Fellowships fix-up (docs block fellowships_rule) is applied here, on read; raw.users keeps what Graph returned.
with

source_users as (
    select * from {{ source('raw', 'users') }}
),

renamed as (
    select
        lower(email) as email,
        graph_id,
        user_id,
        full_name,
        nullif(trim(department), '') as directory_department,
        nullif(trim(job_title), '') as directory_job_title,
        college,
        coalesce(directory_status, case when department is not null or full_name is not null then 'found' end)
            as directory_status,
        fetched_at
    from source_users
),

fellowships_fixed as (
    select
        email,
        graph_id,
        user_id,
        full_name,
        {{ fellowships_job_title('directory_department', 'directory_job_title') }} as job_title,
        {{ fellowships_department('directory_department', 'directory_job_title') }} as department,
        directory_department,
        directory_job_title,
        college,
        directory_status,
        fetched_at
    from renamed
)

select * from fellowships_fixed
