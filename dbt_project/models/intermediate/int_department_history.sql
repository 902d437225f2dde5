with

versions as (
    select * from {{ ref('users_history') }}
),

validity as (
    select
        email,
        department,
        job_title,
        -- The first known version also covers the time before the directory was first read.
        case
            when row_number() over (partition by email order by dbt_valid_from) = 1 then '-infinity'::timestamptz
            else dbt_valid_from
        end as valid_from,
        coalesce(dbt_valid_to, 'infinity'::timestamptz) as valid_to
    from versions
)

select * from validity
