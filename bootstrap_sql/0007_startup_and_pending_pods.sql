-- Starting a server (spec 3.6). Per observation, the pod's own times: created (metadata.creationTimestamp),
-- scheduled (condition PodScheduled) and ready (condition Ready), so each session knows its start-up time from one
-- observation. Nullable, so every existing row stays valid.

alter table container_observations
    add column if not exists pod_created_at timestamptz,
    add column if not exists scheduled_at timestamptz,
    add column if not exists ready_at timestamptz;

alter table container_observations_overflow
    add column if not exists pod_created_at timestamptz,
    add column if not exists scheduled_at timestamptz,
    add column if not exists ready_at timestamptz;

comment on column container_observations.ready_at is
'When the pod became Ready (condition Ready, lastTransitionTime); null where unknown.';
comment on column container_observations.scheduled_at is
'When the pod was scheduled to its node (condition PodScheduled, lastTransitionTime); null where unknown.';

-- Every single-user pod that is not running at a collection (phase Pending or Failed): a start in progress, or one
-- that did not succeed. Written in the collection's transaction, with its run id; never updated or deleted.
create table if not exists pending_pods (
    "timestamp" timestamptz not null,
    cluster text,
    namespace text,
    pod_name text not null,
    pod_uid text,
    user_email text not null,
    container_image text,
    node_name text,
    age_seconds integer,
    phase text not null,
    reason text,
    collector_run_id bigint not null
);

comment on table pending_pods is
'One row per single-user pod in phase Pending or Failed per collection, with why it waits. Written only by the loader.';
comment on column pending_pods.reason is
'Why the pod waits: its notebook container''s state.waiting.reason (ErrImagePull, ImagePullBackOff, CrashLoopBackOff, ...), or the PodScheduled condition''s reason (Unschedulable), or the failed pod''s reason.';

-- Null-safe, like the overflow table's key: a pod of a collection is recorded once.
create unique index if not exists pending_pods_key
on pending_pods ("timestamp", coalesce(cluster, ''), coalesce(namespace, ''), pod_name);

create index if not exists pending_pods_collector_run_idx on pending_pods (collector_run_id);
create index if not exists pending_pods_pod_uid_idx on pending_pods (pod_uid);
