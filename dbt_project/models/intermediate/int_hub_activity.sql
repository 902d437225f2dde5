{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        post_hook="{{ distribute_by_user() }}",
        indexes=[
            {'columns': ['user_email', 'collector_run_id', 'server_name']},
            {'columns': ['collector_run_id']},
        ],
    )
}}

{#- What the hub said at each collection about each server (docs block activity_rule), by the person's email: the
    hub names a server's user by its hub username, which users.user_id maps to the email that observations carry.
    Keyed by email so that it lives beside that person's observations: on a Citus coordinator their join runs on
    one worker (spec 3.2), where a join through the hub username would copy every observation to the coordinator.
    An email is the one whose user_id the hub names at the time its collection is built (collection keeps user_id
    current from the pods of the same collection, in the same transaction). Incremental: the collections newer
    than the newest here, appended. -#}

with

hub_servers as (
    select * from {{ ref('stg_raw__hub_servers') }}
    {%- if is_incremental() %}
    where
        collector_run_id > (select coalesce(max(built.collector_run_id), 0) from {{ this }} as built)
        and collector_run_id <= (select max(runs.id) from {{ source('raw', 'collector_runs') }} as runs)
    {%- endif %}
),

-- One row per person, read once: on Citus the join below is then with an intermediate result on every worker (the
-- directory is distributed by email, the servers by hub username).
directory as materialized (
    select
        email,
        user_id
    from {{ ref('stg_raw__users') }}
),

activity as (
    select
        directory.email as user_email,
        hub_servers.collector_run_id,
        hub_servers.server_name,
        hub_servers.last_activity
    from hub_servers
    inner join directory on hub_servers.hub_user_name = directory.user_id
)

select * from activity
