-- The predecessor's tables, as its deployments hold them.

create table container_observations (
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

create table users (
    email text primary key,
    user_id text,
    full_name text,
    department text,
    job_title text,
    college text,
    first_seen timestamptz,
    last_seen timestamptz
);
