-- Raw tables (spec 3.1). Runs with search_path set to RAW_SCHEMA.
-- Only creates and adds, so it is safe on a predecessor database (RAW_SCHEMA=public):
-- an existing table keeps its rows and columns, and gains the new nullable columns.

create table if not exists container_observations (
    "timestamp" timestamptz not null,
    user_email text not null,
    user_name text,
    node_name text,
    container_image text,
    container_base text not null,
    container_version text,
    age_seconds integer,
    pod_name text not null,
    primary key (user_email, pod_name, "timestamp")
);

alter table container_observations
    add column if not exists cluster text,
    add column if not exists namespace text,
    add column if not exists pod_uid text,
    add column if not exists server_name text,
    add column if not exists gpu_count integer,
    add column if not exists cpu_request numeric,
    add column if not exists memory_request_bytes bigint,
    add column if not exists pod_started_at timestamptz,
    add column if not exists collector_run_id bigint;

comment on table container_observations is
'One row per running single-user pod per collection. Written only by the loader; never updated or deleted.';
comment on column container_observations.collector_run_id is
'The collector_runs row that wrote this observation; null for rows from before adoption.';

create table if not exists collector_runs (
    id bigint generated always as identity primary key,
    kind text not null,
    cluster text,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    observed_at timestamptz,
    status text not null check (status in ('succeeded', 'failed')),
    pods_listed integer not null default 0,
    rows_recorded integer not null default 0,
    rows_already_recorded integer not null default 0,
    pods_skipped integer not null default 0,
    skip_reasons jsonb not null default '{}'::jsonb,
    error text
);

comment on table collector_runs is
'One row per loader run (kind collect or users_sync), succeeded or failed; read by dbt source freshness.';

create index if not exists collector_runs_kind_finished_idx
on collector_runs (kind, finished_at desc);

-- Serves the incremental sessions model: "observations newer than the last processed run".
create index if not exists container_observations_collector_run_idx
on container_observations (collector_run_id)
where collector_run_id is not null;

create table if not exists users (
    email text primary key,
    user_id text,
    full_name text,
    department text,
    job_title text,
    first_seen timestamptz,
    last_seen timestamptz
);

alter table users
    add column if not exists college text,
    add column if not exists graph_id text,
    add column if not exists directory_status text,
    add column if not exists fetched_at timestamptz;

comment on table users is
'Directory data as Microsoft Graph returned it, one row per email; fix-ups happen in dbt.';
