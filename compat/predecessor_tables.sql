-- The predecessor's tables as ncsa/jupyterhub-metrics v1.2.3 creates them (chart/files/init-db.sql
-- and migrations 000001-000004), restated here: the same columns, types, NOT NULLs, defaults and
-- indexes. On TimescaleDB the predecessor also makes container_observations a hypertable with
-- compression; this fixture is the plain-PostgreSQL shape of the same schema.

create table users (
    email text primary key,
    -- The hub user id; the predecessor's collector always writes it, so it is NOT NULL.
    user_id text not null,
    full_name text,
    department text,
    college text,
    job_title text,
    first_seen timestamptz default now(),
    last_seen timestamptz default now()
);

create index idx_users_user_id on users (user_id);

create table container_observations (
    "timestamp" timestamptz not null,
    user_email text not null,
    -- The person's name (GIT_AUTHOR_NAME of the notebook container).
    user_name text,
    node_name text not null,
    container_image text not null,
    container_base text not null,
    container_version text,
    age_seconds integer,
    -- Nullable as declared, but part of the primary key, so never null in practice.
    pod_name text,
    primary key (user_email, pod_name, "timestamp")
);

create index idx_user_email on container_observations (user_email, "timestamp" desc);
create index idx_node_name on container_observations (node_name, "timestamp" desc);
create index idx_container_base on container_observations (container_base, "timestamp" desc);
create index idx_timestamp on container_observations ("timestamp" desc);
create index idx_sessions_partition on container_observations (user_email, pod_name, node_name, "timestamp" desc);
create index idx_timestamp_range on container_observations ("timestamp" desc) where "timestamp" is not null;
create index idx_user_timestamp on container_observations (user_email, "timestamp" desc, pod_name, node_name);
create index idx_node_timestamp on container_observations (node_name, "timestamp" desc, user_email);
create index idx_container_timestamp on container_observations (container_base, "timestamp" desc, user_email);
