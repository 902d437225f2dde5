-- Runs at every `db migrate`, after the numbered files, in one transaction; idempotent.
--
-- With TimescaleDB (spec 3.2): container_observations becomes a hypertable (existing rows
-- migrated, also when the extension arrives after the first migrate), chunks older than 7 days
-- are compressed, and hourly_pod_usage is a continuous aggregate. Without it, hourly_pod_usage
-- is a plain view. No retention policy, ever.
--
-- The extension is used wherever it is installed: every TimescaleDB function is called
-- qualified with its schema. When it is available but not installed, it is created in public
-- (never in the raw schema); a role that may not create it, or a server that does not preload
-- it, gets the plain views instead of an error. Nothing reads superuser-only settings.
--
-- hourly_node_stats and hourly_image_stats are created over hourly_pod_usage only where those
-- names are free: a predecessor database keeps its own objects of those names, and nothing of
-- this project reads them. They carry the predecessor's column names, plus observations.

do $hourly$
declare
    timescaledb_schema name;
begin
    select extnamespace::regnamespace::name into timescaledb_schema
    from pg_extension where extname = 'timescaledb';

    if timescaledb_schema is null
        and exists (select from pg_available_extensions where name = 'timescaledb')
        and to_regnamespace('public') is not null
    then
        begin
            create extension if not exists timescaledb schema public;
            timescaledb_schema := 'public';
        exception when others then
            raise notice 'TimescaleDB is available but could not be created (%); using plain views', sqlerrm;
        end;
    end if;

    if timescaledb_schema is not null then
        if not exists (
            select from timescaledb_information.hypertables
            where hypertable_schema = current_schema() and hypertable_name = 'container_observations'
        ) then
            execute format(
                'select %I.create_hypertable(%L::regclass, %L, chunk_time_interval => interval %L,'
                ' migrate_data => true)',
                timescaledb_schema, 'container_observations', 'timestamp', '7 days'
            );
        end if;

        -- A predecessor that already compresses keeps its settings (they cannot change while
        -- chunks are compressed). Ours put every primary-key column in segmentby or orderby.
        if not exists (
            select from timescaledb_information.hypertables
            where hypertable_schema = current_schema() and hypertable_name = 'container_observations'
                and compression_enabled
        ) then
            alter table container_observations set (
                timescaledb.compress,
                timescaledb.compress_segmentby = 'user_email, node_name',
                timescaledb.compress_orderby = 'pod_name, "timestamp" desc'
            );
        end if;
        execute format(
            'select %I.add_compression_policy(%L::regclass, interval %L, if_not_exists => true)',
            timescaledb_schema, 'container_observations', '7 days'
        );

        if to_regclass('hourly_pod_usage') is null then
            execute format(
                $sql$
                create materialized view hourly_pod_usage
                with (timescaledb.continuous, timescaledb.materialized_only = false) as
                select
                    %I.time_bucket(interval '1 hour', "timestamp") as bucket,
                    cluster,
                    namespace,
                    node_name,
                    container_base,
                    container_version,
                    user_email,
                    pod_name,
                    count(*) as observations,
                    count(age_seconds) as aged_observations,
                    sum(age_seconds) as age_seconds_sum
                from container_observations
                group by 1, 2, 3, 4, 5, 6, 7, 8
                with no data
                $sql$,
                timescaledb_schema
            );
            -- start_offset null: the first refresh covers all history (adoption), later ones what changed.
            execute format(
                'select %I.add_continuous_aggregate_policy(%L::regclass, start_offset => null,'
                ' end_offset => interval %L, schedule_interval => interval %L, if_not_exists => true)',
                timescaledb_schema, 'hourly_pod_usage', '1 hour', '15 minutes'
            );
        end if;
    elsif to_regclass('hourly_pod_usage') is null then
        create view hourly_pod_usage as
        select
            date_trunc('hour', "timestamp" at time zone 'UTC') at time zone 'UTC' as bucket,
            cluster,
            namespace,
            node_name,
            container_base,
            container_version,
            user_email,
            pod_name,
            count(*) as observations,
            count(age_seconds) as aged_observations,
            sum(age_seconds) as age_seconds_sum
        from container_observations
        group by 1, 2, 3, 4, 5, 6, 7, 8;
    end if;

    if to_regclass('hourly_node_stats') is null then
        create view hourly_node_stats as
        select
            bucket as hour,
            node_name,
            count(distinct user_email) as unique_users,
            count(distinct pod_name) as total_containers,
            sum(age_seconds_sum)::numeric / nullif(sum(aged_observations), 0) as avg_age_seconds,
            sum(observations)::bigint as observations
        from hourly_pod_usage
        group by bucket, node_name;
    end if;

    if to_regclass('hourly_image_stats') is null then
        create view hourly_image_stats as
        select
            bucket as hour,
            container_base,
            container_version,
            count(distinct user_email) as unique_users,
            count(distinct pod_name) as total_containers
        from hourly_pod_usage
        group by bucket, container_base, container_version;
    end if;
end
$hourly$;
