{{ config(materialized='view') }}

{#- Sessions with the department and job title their user had when each started. -#}

with

sessions as (
    select * from {{ ref('user_sessions') }}
),

department_history as (
    select * from {{ ref('int_department_history') }}
),

attributed as (
    select
        sessions.session_id,
        sessions.user_email,
        sessions.session_start,
        sessions.node_type,
        sessions.container_base,
        sessions.runtime_hours,
        sessions.gpu_hours,
        sessions.cpu_hours,
        sessions.gpu_device_hours,
        coalesce(department_history.department, 'Unknown') as department,
        department_history.job_title
    from sessions
    left join department_history
        on {{ held_at_start('department_history', 'email', 'sessions.user_email', 'sessions.session_start') }}
)

select * from attributed
