-- TimescaleDB objects (spec 3.2), or the same names as ordinary views on plain PostgreSQL.
--
-- Continuous aggregates cannot hold DISTINCT aggregates, so the materialised grain is
-- one row per (hour, node, image, user, pod): hourly_pod_activity. hourly_node_stats and
-- hourly_image_stats are views over it that count distinct users and pods, and have the
-- same columns whichever branch ran. No retention policy is ever added.

do $bootstrap$
declare
    timescaledb_usable boolean := exists (select from pg_extension where extname = 'timescaledb')
        or (
            exists (select from pg_available_extensions where name = 'timescaledb')
            and current_setting('shared_preload_libraries') ilike '%timescaledb%'
        );
begin
    if timescaledb_usable then
        create extension if not exists timescaledb;

        perform create_hypertable(
            'container_observations', 'timestamp',
            chunk_time_interval => interval '7 days',
            migrate_data => true,
            if_not_exists => true
        );

        -- A predecessor that already compresses keeps its settings (they cannot change while
        -- chunks are compressed). Ours put every primary-key column in segmentby or orderby.
        if not exists (
            select from timescaledb_information.hypertables
            where hypertable_schema = current_schema()
                and hypertable_name = 'container_observations'
                and compression_enabled
        ) then
            execute $sql$
                alter table container_observations set (
                    timescaledb.compress,
                    timescaledb.compress_segmentby = 'user_email, node_name',
                    timescaledb.compress_orderby = 'pod_name, "timestamp" desc'
                )
            $sql$;
        end if;
        perform add_compression_policy('container_observations', interval '7 days', if_not_exists => true);

        if to_regclass('hourly_pod_activity') is null then
            execute $sql$
                create materialized view hourly_pod_activity
                with (timescaledb.continuous, timescaledb.materialized_only = false) as
                select
                    time_bucket(interval '1 hour', "timestamp") as bucket,
                    node_name,
                    container_base,
                    container_version,
                    user_email,
                    pod_name,
                    count(*) as observations,
                    count(age_seconds) as aged_observations,
                    sum(age_seconds) as age_seconds_sum
                from container_observations
                group by 1, 2, 3, 4, 5, 6
                with no data
            $sql$;
        end if;
        -- start_offset null: the first refresh covers all history (adoption), later ones what changed.
        perform add_continuous_aggregate_policy(
            'hourly_pod_activity',
            start_offset => null,
            end_offset => interval '1 hour',
            schedule_interval => interval '15 minutes',
            if_not_exists => true
        );
    elsif to_regclass('hourly_pod_activity') is null then
        execute $sql$
            create view hourly_pod_activity as
            select
                date_trunc('hour', "timestamp" at time zone 'UTC') at time zone 'UTC' as bucket,
                node_name,
                container_base,
                container_version,
                user_email,
                pod_name,
                count(*) as observations,
                count(age_seconds) as aged_observations,
                sum(age_seconds) as age_seconds_sum
            from container_observations
            group by 1, 2, 3, 4, 5, 6
        $sql$;
    end if;

    if to_regclass('hourly_node_stats') is null then
        execute $sql$
            create view hourly_node_stats as
            select
                bucket,
                node_name,
                count(distinct user_email) as distinct_users,
                count(distinct pod_name) as distinct_pods,
                sum(observations)::bigint as observations,
                sum(age_seconds_sum)::numeric / nullif(sum(aged_observations), 0) as mean_age_seconds
            from hourly_pod_activity
            group by bucket, node_name
        $sql$;
    end if;

    if to_regclass('hourly_image_stats') is null then
        execute $sql$
            create view hourly_image_stats as
            select
                bucket,
                container_base,
                container_version,
                count(distinct user_email) as distinct_users,
                count(distinct pod_name) as distinct_pods
            from hourly_pod_activity
            group by bucket, container_base, container_version
        $sql$;
    end if;
end
$bootstrap$;
