{{ config(materialized='view') }}

{#- What each allocation's grantee used on each day of its period (docs block allocation_rule), by the rules of
    every other figure: hours split at midnight (session_days), the department at session start, hub groups as they
    were (int_group_days), storage by day end (storage_days, int_storage_group_days). Days without use have no row. -#}

with

allocations as (
    select * from {{ ref('int_allocations') }}
),

department_days as (
    select * from {{ ref('int_department_days') }}
),

group_days as (
    select * from {{ ref('int_group_days') }}
),

storage_days as (
    select * from {{ ref('storage_days') }}
),

storage_group_days as (
    select * from {{ ref('int_storage_group_days') }}
),

compute_use as (
    select
        allocations.allocation_name,
        department_days.day,
        sum({{ allocation_compute_use('allocations.resource', 'department_days') }}) as used
    from allocations
    inner join department_days
        on
            department_days.day between allocations.starts_on and allocations.ends_on
            and (
                (allocations.grantee_kind = 'department' and allocations.grantee = department_days.department)
                or (allocations.grantee_kind = 'user' and department_days.user_email = lower(allocations.grantee))
            )
    where allocations.resource in ('gpu_hours', 'cpu_core_hours')
    group by allocations.allocation_name, department_days.day
),

group_compute_use as (
    select
        allocations.allocation_name,
        group_days.day,
        sum({{ allocation_compute_use('allocations.resource', 'group_days') }}) as used
    from allocations
    inner join group_days
        on
            group_days.day between allocations.starts_on and allocations.ends_on
            and allocations.grantee = group_days.group_name
    where allocations.grantee_kind = 'group' and allocations.resource in ('gpu_hours', 'cpu_core_hours')
    group by allocations.allocation_name, group_days.day
),

storage_use as (
    select
        allocations.allocation_name,
        storage_days.storage_day as day,
        sum(storage_days.gb_months) as used
    from allocations
    inner join storage_days
        on
            storage_days.storage_day between allocations.starts_on and allocations.ends_on
            and (
                (allocations.grantee_kind = 'department' and allocations.grantee = storage_days.department)
                or (allocations.grantee_kind = 'user' and storage_days.user_email = lower(allocations.grantee))
            )
    where allocations.resource = 'storage_gb_months'
    group by allocations.allocation_name, storage_days.storage_day
),

group_storage_use as (
    select
        allocations.allocation_name,
        storage_group_days.storage_day as day,
        sum(storage_group_days.gb_months) as used
    from allocations
    inner join storage_group_days
        on
            storage_group_days.storage_day between allocations.starts_on and allocations.ends_on
            and allocations.grantee = storage_group_days.group_name
    where allocations.grantee_kind = 'group' and allocations.resource = 'storage_gb_months'
    group by allocations.allocation_name, storage_group_days.storage_day
)

select * from compute_use
union all
select * from group_compute_use
union all
select * from storage_use
union all
select * from group_storage_use
