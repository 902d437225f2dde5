-- depends_on: {{ source('raw', 'collector_runs') }}
-- depends_on: {{ ref('int_observations') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['bucket', 'user_email', 'pod_name'],
        on_schema_change='fail',
        indexes=[
            {'columns': ['bucket']},
            {'columns': ['user_email', 'pod_name', 'bucket']},
            {'columns': ['last_collector_run_id']},
        ],
    )
}}

{#- The hourly panels' table: per hour (UTC), cluster, namespace, node, image, user and pod, the observations of
    both observation tables; the columns of raw.hourly_pod_usage. A table kept incrementally, so a panel reads only
    its time range: each build recounts just the hours of the users' pods that new observations fall in. -#}

with

{% if is_incremental() %}

new_observations as (
    {{ observations_of_new_runs('user_email, pod_name, ' ~ utc_hour('observed_at') ~ ' as bucket') }}
),

touched_hours as (
    select distinct
        user_email,
        pod_name,
        bucket
    from new_observations
),

-- LATERAL keeps this an index range scan per user, pod and hour, whatever the history.
observations as (
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

observations as (
    select * from {{ ref('int_observations') }}
),

{% endif %}

hours as (
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
)

select * from hours
