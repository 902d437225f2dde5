-- Runs at every `db migrate`, after the numbered files, in one transaction; idempotent.
--
-- Past one node (spec 3.2): on a Citus coordinator, the raw tables that grow with use are distributed by the user,
-- co-located, so that what one person did lives on one worker and every per-user statement runs there:
-- container_observations and container_observations_overflow by user_email, users by email, and the hub's
-- snapshots (hub_servers, hub_group_members) and pending_pods by their user column. collector_runs, small and
-- read by every incremental window, is a reference table (a copy on every node), and so are the storage tables
-- (storage_observations, hub_names_seen). Distributing copies a table's
-- rows into its shards; the coordinator's local copy is kept as Citus leaves it (never truncated here).
--
-- Other writers' rows still get a run id: the column default external_collector_run_id() (bootstrap_sql/0010)
-- is evaluated on the coordinator, where the run is inserted into the reference table. A table that is already
-- distributed (or a reference table) is left as it is, so the step is a no-op on the next migrate. Nothing happens
-- on a server without Citus, or on a Citus worker.

do $distributed$
declare
    distributed record;
    timescaledb_schema name;
    hypertable boolean := false;
begin
    if not exists (select from pg_extension where extname = 'citus') then
        return;
    end if;
    if not citus_is_coordinator() then
        raise warning 'Citus is installed but this node is not its coordinator: the raw tables stay local; run db migrate against the coordinator';
        return;
    end if;
    select extnamespace::regnamespace::name into timescaledb_schema from pg_extension where extname = 'timescaledb';
    if timescaledb_schema is not null then
        execute format(
            'select exists (select from %I.hypertables where hypertable_schema = $1 and hypertable_name = $2)',
            'timescaledb_information'
        ) into hypertable using current_schema(), 'container_observations';
    end if;
    if hypertable then
        raise warning 'container_observations is a TimescaleDB hypertable, which Citus cannot distribute: the raw tables stay on this node';
        return;
    end if;

    -- Reference tables: collector_runs, and the storage tables, whose rows may have no user (a volume whose owner
    -- nobody showed) and grow by a row per volume and day, not per collection.
    for distributed in
        select * from (values ('collector_runs'), ('storage_observations'), ('hub_names_seen')) as tables (table_name)
    loop
        if not exists (select from pg_dist_partition where logicalrelid = distributed.table_name::regclass) then
            perform create_reference_table(distributed.table_name::regclass);
        end if;
    end loop;
    -- The first table sets the co-location group; the others join it.
    for distributed in
        select *
        from (values
            (1, 'container_observations', 'user_email'),
            (2, 'container_observations_overflow', 'user_email'),
            (3, 'users', 'email'),
            (4, 'pending_pods', 'user_email'),
            (5, 'hub_servers', 'user_name'),
            (6, 'hub_group_members', 'user_name')
        ) as tables (position, table_name, column_name)
        order by position
    loop
        if not exists (select from pg_dist_partition where logicalrelid = distributed.table_name::regclass) then
            perform create_distributed_table(
                distributed.table_name::regclass,
                distributed.column_name,
                colocate_with => case when distributed.position = 1 then 'default' else 'container_observations' end
            );
        end if;
    end loop;
end
$distributed$;
