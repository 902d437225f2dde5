{{ config(materialized='view') }}

{#- What each allocation's grantee used on each day of its period (docs block allocation_rule), by the rules of
    every other figure: hours split at midnight (session_days), the department at session start, hub groups as they
    were (int_group_days), storage by day end (storage_days, int_storage_group_days). Days without use have no row. -#}

with

department_days as (
    select * from {{ ref('int_department_days') }}
),

storage_days as (
    select * from {{ ref('storage_days') }}
),

session_group_days as (
    select * from {{ ref('int_group_days') }}
),

storage_group_days as (
    select * from {{ ref('int_storage_group_days') }}
),

-- Each person's use per day in every resource's unit, with their department; then each hub group's.
person_days as (
    select
        department_days.day,
        department_days.department,
        department_days.user_email,
        {{ allocation_gpu_hours('department_days') }} as gpu_hours,
        {{ allocation_core_hours('department_days') }} as cpu_core_hours,
        null::double precision as storage_gb_months
    from department_days

    union all

    select
        storage_days.storage_day as day,
        storage_days.department,
        storage_days.user_email,
        null as gpu_hours,
        null as cpu_core_hours,
        storage_days.gb_months as storage_gb_months
    from storage_days
),

group_days as (
    select
        session_group_days.day,
        session_group_days.group_name,
        {{ allocation_gpu_hours('session_group_days') }} as gpu_hours,
        {{ allocation_core_hours('session_group_days') }} as cpu_core_hours,
        null::double precision as storage_gb_months
    from session_group_days

    union all

    select
        storage_group_days.storage_day as day,
        storage_group_days.group_name,
        null as gpu_hours,
        null as cpu_core_hours,
        storage_group_days.gb_months as storage_gb_months
    from storage_group_days
),

allocations as (
    select * from {{ ref('int_allocations') }}
),

person_use as (
    select
        allocations.allocation_name,
        person_days.day,
        sum({{ allocation_resource('allocations.resource', 'person_days') }}) as used
    from allocations
    inner join person_days
        on
            person_days.day between allocations.starts_on and allocations.ends_on
            and (
                (allocations.grantee_kind = 'department' and allocations.grantee = person_days.department)
                or (allocations.grantee_kind = 'user' and person_days.user_email = lower(allocations.grantee))
            )
            and {{ allocation_resource('allocations.resource', 'person_days') }} is not null
    group by allocations.allocation_name, person_days.day
),

group_use as (
    select
        allocations.allocation_name,
        group_days.day,
        sum({{ allocation_resource('allocations.resource', 'group_days') }}) as used
    from allocations
    inner join group_days
        on
            group_days.day between allocations.starts_on and allocations.ends_on
            and allocations.grantee_kind = 'group'
            and allocations.grantee = group_days.group_name
            and {{ allocation_resource('allocations.resource', 'group_days') }} is not null
    group by allocations.allocation_name, group_days.day
)

select * from person_use
union all
select * from group_use
