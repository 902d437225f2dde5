{{ config(materialized='view') }}

{#- Every session-day (with its department) attributed to each hub group its user belonged to when the session
    started (docs block group_rule); a user in no group counts under `(no group)`. A user in two groups counts in
    both: per group figures add up to the department totals only where each user is in at most one group. -#}

with

department_days as (
    select * from {{ ref('int_department_days') }}
),

memberships as (
    select * from {{ ref('int_group_memberships') }}
),

group_days as (
    select
        coalesce(memberships.group_name, '(no group)') as group_name,
        department_days.*
    from department_days
    left join memberships
        on
            {{ held_at_start('memberships', 'user_email', 'department_days.user_email', 'department_days.session_start')
            }}
            and memberships.cluster is not distinct from department_days.cluster
)

-- The department days' columns, whatever they are, and the group: this model adds, never picks.
select * from group_days  -- noqa: AM04
