{{ config(materialized='view') }}

{#- The servers waiting now: every pod pending (or failed) at its cluster's latest collection, and why. A view. -#}

with

pending as (
    select * from {{ ref('stg_raw__pending_pods') }}
),

latest_collections as (
    {{ latest_collections() }}
)

select
    pending.observed_at,
    pending.cluster,
    pending.namespace,
    pending.pod_name,
    pending.user_email,
    pending.container_image,
    pending.node_name,
    pending.age_seconds,
    pending.phase,
    pending.reason
from pending
inner join latest_collections
    on
        pending.cluster is not distinct from latest_collections.cluster
        and pending.observed_at = latest_collections.latest_collection
