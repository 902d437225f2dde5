{#- Every observation as the session models read it: the staged observations of both observation tables, each with
    what the hub said at that collection about the pod's server (docs block activity_rule): its last activity. An
    observation maps to the hub's server by the collection's run id, its user (int_hub_activity, by email) and the
    server name; observations of collections that did not read the hub get null. -#}

with

observations as (
    select * from {{ ref('stg_raw__container_observations') }}
),

hub_activity as (
    select * from {{ ref('int_hub_activity') }}
),

with_activity as (
    select
        observations.*,
        hub_activity.last_activity as hub_last_activity
    from observations
    left join hub_activity
        on
            observations.user_email = hub_activity.user_email
            and observations.collector_run_id = hub_activity.collector_run_id
            and observations.server_name = hub_activity.server_name
)

-- The staged columns, whatever they are, and the hub's activity: this model adds, never picks.
select * from with_activity  -- noqa: AM04
