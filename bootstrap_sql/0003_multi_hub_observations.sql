-- Two hubs in one cluster (or two clusters) can run a pod with the same user and pod name at
-- the same collection. container_observations' primary key (user_email, pod_name, timestamp)
-- is the predecessor's and cannot change in place on a compressed hypertable, so the second
-- pod's observation is kept here: same columns, a key that includes cluster and namespace.
-- Together the two tables hold every observation; dbt reads both (stg_raw__container_observations).

create table if not exists container_observations_overflow (
    "timestamp" timestamptz not null,
    user_email text not null,
    user_name text,
    node_name text not null,
    container_image text not null,
    container_base text not null,
    container_version text,
    age_seconds integer,
    pod_name text not null,
    cluster text,
    namespace text,
    pod_uid text,
    server_name text,
    gpu_count integer,
    cpu_request numeric,
    memory_request_bytes bigint,
    pod_started_at timestamptz,
    collector_run_id bigint
);

comment on table container_observations_overflow is
'Observations whose (user_email, pod_name, timestamp) is already held in container_observations by a pod of another cluster or namespace. Written only by the loader; never updated or deleted.';

-- Null-safe: a collector run without a cluster name, or a pod without a namespace, is one value.
create unique index if not exists container_observations_overflow_key
on container_observations_overflow (user_email, pod_name, "timestamp", coalesce(cluster, ''), coalesce(namespace, ''));

create index if not exists container_observations_overflow_collector_run_idx
on container_observations_overflow (collector_run_id);

-- Collection keeps users.first_seen/last_seen current (spec 3.1); the directory sync asks for
-- users not looked up yet.
create index if not exists users_directory_status_idx
on users (directory_status);
