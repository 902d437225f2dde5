{{ config(materialized='view') }}

{#- Starts that did not succeed (docs block startup_rule): pods seen only pending (or failed), never running, and not
    pending at their cluster's latest collection (those may still start: see pending_now). Sampled every 5 minutes: a
    pod that failed and vanished between two collections is not seen. A view. -#}

with

pending as (
    select * from {{ ref('stg_raw__pending_pods') }}
),

sessions as (
    select * from {{ ref('user_sessions') }}
),

latest_collections as (
    {{ latest_collections() }}
),

per_pod as (
    select
        cluster,
        namespace,
        pod_uid,
        min(pod_name) as pod_name,
        min(user_email) as user_email,
        min(container_image) as container_image,
        min(observed_at) as first_seen_pending,
        max(observed_at) as last_seen_pending,
        count(*) as observations,
        (array_agg(phase order by observed_at desc))[1] as last_phase,
        (array_agg(reason order by observed_at desc) filter (where reason is not null))[1] as last_reason,
        mode() within group (order by reason) as most_frequent_reason
    from pending
    where pod_uid is not null
    group by cluster, namespace, pod_uid
)

select
    per_pod.*,
    coalesce(per_pod.last_reason, per_pod.last_phase) as reason
from per_pod
left join latest_collections on per_pod.cluster is not distinct from latest_collections.cluster
where
    not exists (
        select 1 from sessions
        where sessions.pod_uid = per_pod.pod_uid
    )
    and (
        per_pod.last_phase = 'Failed'
        or per_pod.last_seen_pending < latest_collections.latest_collection
    )
