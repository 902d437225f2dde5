-- The Fellowships fix-up (docs block fellowships_rule) is applied here, on read, to every version
-- of the directory snapshot: the snapshot keeps what Graph returned.

{#- Snapshots taken before 0.2 versioned fixed-up values and kept the directory's own beside them
    (directory_department, directory_job_title); a snapshot started since has no such columns. -#}
{%- set has_pre_0_2_versions = 'directory_department' in snapshot_column_names(ref('users_history')) %}

with

versions as (
    select * from {{ ref('users_history') }}
),

directory_values as (
    select
        email,
        dbt_valid_from,
        dbt_valid_to,
        {%- if has_pre_0_2_versions %}
        nullif(trim(coalesce(directory_department, department)), '') as directory_department,
        nullif(trim(coalesce(directory_job_title, job_title)), '') as directory_job_title
        {%- else %}
        nullif(trim(department), '') as directory_department,
        nullif(trim(job_title), '') as directory_job_title
        {%- endif %}
    from versions
),

validity as (
    select
        email,
        {{ fellowships_department('directory_department', 'directory_job_title') }} as department,
        {{ fellowships_job_title('directory_department', 'directory_job_title') }} as job_title,
        -- The first known version also covers the time before the directory was first read.
        case
            when row_number() over (partition by email order by dbt_valid_from) = 1 then '-infinity'::timestamptz
            else dbt_valid_from
        end as valid_from,
        coalesce(dbt_valid_to, 'infinity'::timestamptz) as valid_to
    from directory_values
)

select * from validity
