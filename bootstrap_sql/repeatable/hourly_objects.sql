-- Runs at every `db migrate`, after the numbered files, in one transaction; idempotent.
--
-- With TimescaleDB (spec 3.2): container_observations becomes a hypertable (existing rows
-- migrated, also when the extension arrives after the first migrate), chunks older than 7 days
-- are compressed, and container_observations_hourly is its continuous aggregate. No retention
-- policy, ever.
--
-- hourly_pod_usage counts every observation, in whichever table it is (spec 3.2): a view that adds
-- the overflow table's observations (the second hub's pods, bootstrap_sql/0003) to the hourly
-- counts of container_observations: its continuous aggregate with TimescaleDB (a continuous
-- aggregate reads one hypertable only), a grouping of the table itself without. The view is
-- replaced in place, same columns, so its grants stay. Releases before 0.3 made hourly_pod_usage
-- itself the continuous aggregate (over container_observations only): it is renamed to
-- container_observations_hourly, keeping its data, and the new view gets its grants. A database
-- that gets the extension after its first migrate gets the continuous aggregate in the same way.
-- The dashboards read the analytics model hourly_pod_usage (same columns), a table each build
-- keeps incrementally; this view is for ad-hoc queries and the views below.
--
-- The extension is used wherever it is installed: every TimescaleDB function is called
-- qualified with its schema. When it is available but not installed, it is created in public
-- (never in the raw schema); a role that may not create it, or a server that does not preload
-- it, gets plain objects and one warning instead of an error. Creating the extension on a server
-- that does not preload it ends the connection (FATAL), which no exception handler catches, so the
-- preload is checked first: the preloaded loader declares timescaledb.max_background_workers, a
-- setting every role sees in pg_settings. Nothing reads superuser-only settings. An extension
-- in a schema the migrating role may not use fails the migrate, saying which grant is missing.
--
-- hourly_node_stats and hourly_image_stats are created over hourly_pod_usage only where those
-- names are free or hold this project's own views: a predecessor database keeps its own objects
-- of those names, and nothing of this project reads them. They carry the predecessor's column
-- names, plus observations.

do $hourly$
declare
    timescaledb_schema name;
    preloaded boolean;
    main_hourly text;
    renamed_aggregate boolean := false;
    stats_view text;
    privilege record;
    refresh_job record;
begin
    select extnamespace::regnamespace::name into timescaledb_schema
    from pg_extension where extname = 'timescaledb';
    preloaded := exists (select from pg_settings where name = 'timescaledb.max_background_workers');

    if timescaledb_schema is not null and not preloaded then
        raise exception 'TimescaleDB is installed in this database but the server does not preload it: add timescaledb to shared_preload_libraries, restart PostgreSQL and run db migrate again';
    end if;
    if timescaledb_schema is not null and not has_schema_privilege(timescaledb_schema, 'usage') then
        raise exception 'TimescaleDB is installed in schema %, which role % may not use: as a superuser, run grant usage on schema % to % and run db migrate again',
            timescaledb_schema, current_user, quote_ident(timescaledb_schema), quote_ident(current_user);
    end if;

    if timescaledb_schema is null and exists (select from pg_available_extensions where name = 'timescaledb') then
        if not preloaded then
            raise warning 'TimescaleDB is installed on this server but not preloaded, so container_observations stays a plain table: add timescaledb to shared_preload_libraries, restart PostgreSQL and run db migrate again';
        elsif to_regnamespace('public') is not null then
            begin
                create extension if not exists timescaledb schema public;
                timescaledb_schema := 'public';
            exception when others then
                raise warning 'TimescaleDB is available but % may not create it (%), so container_observations stays a plain table: create the extension as a superuser and run db migrate again', current_user, sqlerrm;
            end;
        end if;
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

        if to_regclass('container_observations_hourly') is null then
            if exists (
                select from timescaledb_information.continuous_aggregates
                where view_schema = current_schema() and view_name = 'hourly_pod_usage'
            ) then
                alter materialized view hourly_pod_usage rename to container_observations_hourly;
                renamed_aggregate := true;
            else
                execute format(
                    $sql$
                    create materialized view container_observations_hourly
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
            end if;
        end if;
        -- start_offset null: the first refresh covers all history (adoption), later ones what changed. A refresh
        -- runs in batches, each committed; newest first (TimescaleDB's default), the watermark jumps to the end after
        -- the first batch and, until the last, older hours read as empty. Oldest first, every moment of a long first
        -- refresh reads whole: hours below the watermark materialized, the rest from the table.
        execute format(
            'select %I.add_continuous_aggregate_policy(%L::regclass, start_offset => null,'
            ' end_offset => interval %L, schedule_interval => interval %L, if_not_exists => true,'
            ' refresh_newest_first => false)',
            timescaledb_schema, 'container_observations_hourly', '1 hour', '15 minutes'
        );
        -- A policy an earlier migrate added refreshes newest first: the same, from now on.
        for refresh_job in
            select jobs.job_id, jobs.config from timescaledb_information.jobs as jobs
            join timescaledb_information.continuous_aggregates as aggregates
                on aggregates.materialization_hypertable_schema = jobs.hypertable_schema
                and aggregates.materialization_hypertable_name = jobs.hypertable_name
            where jobs.proc_name = 'policy_refresh_continuous_aggregate'
                and aggregates.view_schema = current_schema()
                and aggregates.view_name = 'container_observations_hourly'
                and (jobs.config ->> 'refresh_newest_first') is distinct from 'false'
        loop
            execute format(
                'select %I.alter_job(%s, config => %L::jsonb)',
                timescaledb_schema, refresh_job.job_id, refresh_job.config || '{"refresh_newest_first": false}'
            );
        end loop;
        -- TimescaleDB 2.28 and 2.29: a parallel ChunkAppend over chunks that are compressed and also hold rows
        -- inserted since (late rows, other writers' backfills) sometimes returns none of those rows, so a build's
        -- incremental read missed whole collections (reproduced under load: 3-4 of 9 property runs; never with
        -- this off, never on plain PostgreSQL). Off for every session of this database, readers' included.
        if not exists (
                select from pg_db_role_setting as settings
                join pg_database as this_database on this_database.oid = settings.setdatabase
                where this_database.datname = current_database() and settings.setrole = 0
                    and 'timescaledb.enable_parallel_chunk_append=off' = any(settings.setconfig)
        ) then
            begin
                execute format(
                    'alter database %I set timescaledb.enable_parallel_chunk_append = off', current_database()
                );
            exception when insufficient_privilege then
                raise warning 'could not turn off timescaledb.enable_parallel_chunk_append for database % (only its owner or a superuser may): run `alter database % set timescaledb.enable_parallel_chunk_append = off` as one; with it on, TimescaleDB may miss rows inserted into compressed chunks', current_database(), quote_ident(current_database());
            end;
            set timescaledb.enable_parallel_chunk_append = off;
        end if;
        main_hourly := $sql$
            select
                bucket, cluster, namespace, node_name, container_base, container_version, user_email, pod_name,
                observations, aged_observations, age_seconds_sum
            from container_observations_hourly
        $sql$;
    else
        main_hourly := $sql$
            select
                date_trunc('hour', "timestamp" at time zone 'UTC') at time zone 'UTC' as bucket,
                cluster, namespace, node_name, container_base, container_version, user_email, pod_name,
                count(*) as observations,
                count(age_seconds) as aged_observations,
                sum(age_seconds) as age_seconds_sum
            from container_observations
            group by 1, 2, 3, 4, 5, 6, 7, 8
        $sql$;
    end if;

    -- Every observation (spec 3.2): the main table's hours and the overflow table's, added up.
    execute format(
        $sql$
        create or replace view hourly_pod_usage as
        select
            bucket,
            cluster,
            namespace,
            node_name,
            container_base,
            container_version,
            user_email,
            pod_name,
            sum(observations)::bigint as observations,
            sum(aged_observations)::bigint as aged_observations,
            sum(age_seconds_sum)::bigint as age_seconds_sum
        from (
            %s
            union all
            select
                date_trunc('hour', "timestamp" at time zone 'UTC') at time zone 'UTC' as bucket,
                cluster, namespace, node_name, container_base, container_version, user_email, pod_name,
                count(*) as observations,
                count(age_seconds) as aged_observations,
                sum(age_seconds) as age_seconds_sum
            from container_observations_overflow
            group by 1, 2, 3, 4, 5, 6, 7, 8
        ) as both_tables
        group by 1, 2, 3, 4, 5, 6, 7, 8
        $sql$,
        main_hourly
    );
    comment on view hourly_pod_usage is
    'Per hour (UTC), cluster, namespace, node, image, user and pod: observations of both observation tables.';

    -- Whoever could read the continuous aggregate under its old name can read the view that took the name.
    if renamed_aggregate then
        for privilege in
            select grantee.rolname, acl.privilege_type
            from pg_class, aclexplode(pg_class.relacl) as acl
            join pg_roles as grantee on grantee.oid = acl.grantee
            where pg_class.oid = 'container_observations_hourly'::regclass
                and acl.grantee <> pg_class.relowner
        loop
            execute format('grant %s on hourly_pod_usage to %I', privilege.privilege_type, privilege.rolname);
        end loop;
    end if;

    -- Ours when free, or when they read this project's hourly objects (re-pointed at the view).
    foreach stats_view in array array['hourly_node_stats', 'hourly_image_stats'] loop
        if to_regclass(stats_view) is null or exists (
            select from pg_rewrite
            join pg_depend on pg_depend.classid = 'pg_rewrite'::regclass and pg_depend.objid = pg_rewrite.oid
            where pg_rewrite.ev_class = to_regclass(stats_view)
                and pg_depend.refobjid in (
                    to_regclass('hourly_pod_usage'), to_regclass('container_observations_hourly')
                )
        ) then
            if stats_view = 'hourly_node_stats' then
                create or replace view hourly_node_stats as
                select
                    bucket as hour,
                    node_name,
                    count(distinct user_email) as unique_users,
                    count(distinct pod_name) as total_containers,
                    sum(age_seconds_sum)::numeric / nullif(sum(aged_observations), 0) as avg_age_seconds,
                    sum(observations)::bigint as observations
                from hourly_pod_usage
                group by bucket, node_name;
            else
                create or replace view hourly_image_stats as
                select
                    bucket as hour,
                    container_base,
                    container_version,
                    count(distinct user_email) as unique_users,
                    count(distinct pod_name) as total_containers
                from hourly_pod_usage
                group by bucket, container_base, container_version;
            end if;
        end if;
    end loop;
end
$hourly$;
