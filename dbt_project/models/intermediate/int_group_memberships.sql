{#- Each user's hub group memberships with the interval each held (docs block group_rule): the collections that
    recorded the whole set of memberships (because it changed) split time; a membership recorded at one holds until
    the next. The first recorded set also covers the time before the hub was first read, as the directory's first
    version does. Each hub (cluster) has its own groups and its own recordings. -#}

with

recordings as (
    select
        collector_run_id,
        cluster,
        observed_at as recorded_at,
        lead(observed_at) over (partition by cluster order by collector_run_id) as next_recorded_at,
        row_number() over (partition by cluster order by collector_run_id) as recording
    from {{ ref('stg_raw__collector_runs') }}
    where hub_memberships_recorded and run_status = 'succeeded'
),

members as (
    select * from {{ ref('stg_raw__hub_group_members') }}
),

directory as (
    select * from {{ ref('stg_raw__users') }}
),

memberships as (
    select
        recordings.cluster,
        members.group_name,
        members.hub_user_name,
        directory.email as user_email,
        case when recordings.recording = 1 then '-infinity'::timestamptz else recordings.recorded_at end
            as valid_from,
        coalesce(recordings.next_recorded_at, 'infinity'::timestamptz) as valid_to
    from members
    inner join recordings on members.collector_run_id = recordings.collector_run_id
    -- The hub's username maps to the user by users.user_id, as observations do.
    left join directory on members.hub_user_name = directory.user_id
)

select * from memberships
