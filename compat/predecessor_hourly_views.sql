-- The predecessor's hourly objects (v1.2.3) on plain PostgreSQL: on TimescaleDB they are continuous
-- aggregates (predecessor_timescaledb.sql), with the same columns; here plain views with exactly those
-- columns, which is what this project must coexist with after adoption. They read container_observations
-- through the search_path.

create view hourly_node_stats as
select
    date_trunc('hour', "timestamp") as hour,
    node_name,
    count(distinct user_email) as unique_users,
    count(distinct pod_name) as total_containers,
    avg(age_seconds) as avg_age_seconds
from container_observations
group by 1, node_name;

create view hourly_image_stats as
select
    date_trunc('hour', "timestamp") as hour,
    container_base,
    container_version,
    count(distinct user_email) as unique_users,
    count(distinct pod_name) as total_containers
from container_observations
group by 1, container_base, container_version;
