{#- Every observation as the session models read it: the staged observations of both observation tables, each with
    what the hub said at that collection about the pod's server (docs block activity_rule): its last activity. An
    observation maps to the hub's server by the collection's run id, the user's hub username (users.user_id, kept
    current by collection) and the server name; observations of collections that did not read the hub get null. -#}

with

observations as (
    select * from {{ ref('stg_raw__container_observations') }}
),

directory as (
    select * from {{ ref('stg_raw__users') }}
),

hub_servers as (
    select * from {{ ref('stg_raw__hub_servers') }}
),

with_activity as (
    select
        observations.*,
        hub_servers.last_activity as hub_last_activity
    from observations
    left join directory on observations.user_email = directory.email
    left join hub_servers
        on
            observations.collector_run_id = hub_servers.collector_run_id
            and directory.user_id = hub_servers.hub_user_name
            and observations.server_name = hub_servers.server_name
)

-- The staged columns, whatever they are, and the hub's activity: this model adds, never picks.
select * from with_activity  -- noqa: AM04
