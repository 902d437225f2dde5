-- What ncsa/jupyterhub-metrics v1.2.3 (chart/files/init-db.sql) adds on TimescaleDB, the engine it
-- deploys: container_observations a hypertable (default chunk interval), compressed after 7 days
-- segmented by user_email, node_name and container_base, and its two hourly objects as continuous
-- aggregates with their refresh policies (a 3-hour window ending an hour ago, hourly). Applied after
-- predecessor_tables.sql, instead of predecessor_hourly_views.sql, with search_path set to the target
-- schema and TimescaleDB already in the database.

select create_hypertable('container_observations', 'timestamp');

alter table container_observations set (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'user_email,node_name,container_base'
);

select add_compression_policy('container_observations', interval '7 days');

create materialized view hourly_node_stats
with (timescaledb.continuous) as
select
    time_bucket('1 hour', "timestamp") as hour,
    node_name,
    count(distinct user_email) as unique_users,
    count(distinct pod_name) as total_containers,
    avg(age_seconds) as avg_age_seconds
from container_observations
group by hour, node_name
with no data;

select add_continuous_aggregate_policy(
    'hourly_node_stats',
    start_offset => interval '3 hours',
    end_offset => interval '1 hour',
    schedule_interval => interval '1 hour'
);

create materialized view hourly_image_stats
with (timescaledb.continuous) as
select
    time_bucket('1 hour', "timestamp") as hour,
    container_base,
    container_version,
    count(distinct user_email) as unique_users,
    count(distinct pod_name) as total_containers
from container_observations
group by hour, container_base, container_version
with no data;

select add_continuous_aggregate_policy(
    'hourly_image_stats',
    start_offset => interval '3 hours',
    end_offset => interval '1 hour',
    schedule_interval => interval '1 hour'
);
