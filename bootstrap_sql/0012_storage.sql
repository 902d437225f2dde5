-- What people keep (spec 3.8): per-user volumes (KubeSpawner's PVCs, use from kubelet through Prometheus) and
-- directories of a shared home volume (prometheus-dirsize-exporter), kept for good.
--
-- Storage changes slowly and is read per day (size at day end, the day's largest), so a volume has one row per UTC
-- day, not one per collection: the first collection of a day inserts it, later ones update its latest figures
-- only where they changed (most collections of a quiet volume write nothing). A day on which nothing reported the
-- volume (kubelet reports a PVC only while a pod mounts it) has no row: the last known figures stand (the marts
-- carry them forward). collector_run_id is the run that last changed the row, so builds read it again.
create table if not exists storage_observations (
    day date not null,
    layout text not null check (layout in ('volume', 'directory')),
    cluster text,
    namespace text,
    -- The PVC's name, or the directory's name under the shared home volume.
    volume_name text not null,
    -- As the hub showed it: the PVC's hub.jupyter.org/username annotation, or the directory's (escaped) name.
    owner_name text,
    -- The owner by the identity rules (spec 3.3); null where no name the hub or its pods showed matches.
    user_email text,
    server_name text,
    used_bytes bigint,
    largest_used_bytes bigint,
    capacity_bytes bigint,
    quota_bytes bigint,
    file_count bigint,
    last_modified_at timestamptz,
    first_observed_at timestamptz not null,
    -- When used_bytes was read (the latest figure of the day is the one kept).
    observed_at timestamptz not null,
    collector_run_id bigint not null
);

create unique index if not exists storage_observations_key
on storage_observations (day, layout, coalesce(cluster, ''), coalesce(namespace, ''), volume_name);

create index if not exists storage_observations_run on storage_observations (collector_run_id);

comment on table storage_observations is
'One row per storage volume (a per-user PVC or a shared home directory) and UTC day: the day''s latest and largest'
' figures. Written only by the loader.';

-- The names under which the hub and its pods have shown each user: a shared home directory is named by the escaped
-- username (the pods' hub.jupyter.org/username label), and is matched through these, never guessed. A row per
-- combination, with the first collection that showed it.
create table if not exists hub_names_seen (
    user_email text not null,
    hub_username text not null,
    escaped_name text not null,
    first_seen_at timestamptz not null,
    collector_run_id bigint not null,
    primary key (escaped_name, hub_username, user_email)
);

create index if not exists hub_names_seen_hub_username on hub_names_seen (hub_username);

comment on table hub_names_seen is
'Each (escaped name, hub username, email) a pod or PVC has shown, first seen when. Written only by the loader.';

alter table collector_runs
    add column if not exists storage_volumes_listed integer,
    add column if not exists storage_rows_written integer;

comment on column collector_runs.storage_volumes_listed is
'Volumes and home directories this collection read figures for; null where storage was not read.';
