-- depends_on: {{ source('raw', 'collector_runs') }}
-- depends_on: {{ ref('int_observations') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['bucket', 'user_email', 'pod_name'],
        on_schema_change='fail',
        post_hook="{{ distribute_by_user() }}",
        indexes=[
            {'columns': ['bucket']},
            {'columns': ['user_email', 'pod_name', 'bucket']},
            {'columns': ['last_collector_run_id']},
        ],
    )
}}

{#- The hourly panels' table: per hour (UTC), cluster, namespace, node, image, user and pod, the observations of
    both observation tables; the columns of raw.hourly_pod_usage, and `pods`. A table kept incrementally, so a panel reads only
    its time range: each build recounts just the hours of the users' pods that new observations fall in. -#}

{#- Asked once per model (it is a query): see inlined_on_citus. -#}
{%- set inlined = inlined_on_citus() %}

with

{% if is_incremental() %}

new_observations as {{ inlined }} (
    {{ observations_of_new_runs('user_email, pod_name, ' ~ utc_hour('observed_at') ~ ' as bucket') }}
),

touched_hours as {{ inlined }} (
    select distinct
        user_email,
        pod_name,
        bucket
    from new_observations
),

-- LATERAL keeps this an index range scan per user, pod and hour, whatever the history.
observations as {{ inlined }} (
    select hour_observations.*
    from touched_hours
    cross join lateral (
        select stg_observations.*
        from {{ ref('int_observations') }} as stg_observations
        where
            stg_observations.user_email = touched_hours.user_email
            and stg_observations.pod_name = touched_hours.pod_name
            and stg_observations.observed_at >= touched_hours.bucket
            and stg_observations.observed_at < touched_hours.bucket + interval '1 hour'
        offset 0  -- noqa: AM09
    ) as hour_observations
),

{% else %}

observations as {{ inlined }} (
    select * from {{ ref('int_observations') }}
),

{% endif %}

hours as {{ inlined }} (
    select
        {{ utc_hour('observed_at') }} as bucket,
        cluster,
        namespace,
        node_name,
        container_base,
        container_version,
        user_email,
        pod_name,
        count(*) as observations,
        count(age_seconds) as aged_observations,
        sum(age_seconds)::bigint as age_seconds_sum,
        {{ gpu_or_cpu('max(gpu_count)', 'node_name') }} as node_type,
        max(collector_run_id) as last_collector_run_id
    from observations
    group by 1, 2, 3, 4, 5, 6, 7, 8
),

-- A pod that restarted on another node or image within the hour has two rows; `pods` marks one of them, so a
-- panel sums it instead of counting distinct pods (which sorts every row of its range: seconds over a year).
-- Every row of a pod's hour is recounted together (the incremental key holds user, pod and hour), so the mark
-- stays exact.
counted_hours as {{ inlined }} (
    select
        hours.*,
        (row_number() over (
            partition by hours.bucket, hours.cluster, hours.namespace, hours.user_email, hours.pod_name
            order by hours.node_name, hours.container_base, hours.container_version
        ) = 1)::integer as pods
    from hours
)

select * from counted_hours
