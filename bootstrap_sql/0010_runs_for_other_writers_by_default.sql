-- Every raw row reaches the marts on the next build, whoever wrote it (spec 3.4): a row written without a
-- collector_run_id (the predecessor's collector still running during a migration, a psql \copy backfill) gets the
-- id of a collector_runs row of kind 'external', one per writing transaction, as 0004's trigger gave it. Now it is
-- the column's default, evaluated where the row is written, instead of a BEFORE INSERT trigger, for two reasons
-- measured on the real engines:
--   - TimescaleDB (2.28 and 2.29) records no continuous-aggregate invalidation for rows COPY writes into a
--     hypertable that has a row trigger, so a \copy backfill older than the aggregate's watermark was never counted
--     by container_observations_hourly; with a default it is.
--   - Citus runs row triggers of a distributed table on the workers' shards, where inserting the run (into a
--     reference table) is a nested distributed statement that fails; a default is evaluated on the coordinator.
-- A writer that names collector_run_id and gives null keeps null (a default fills only what is not given).
--
-- Race-free as before: the first row of a transaction takes the loader's run-order lock (raw_store.RUN_ORDER_LOCK_KEY)
-- until the transaction ends, so run ids become visible in increasing order. Rows the loader writes carry their id.

do $runs$
declare
    raw_schema name := current_schema();
    run_setting text := 'jupyterhub_metrics.external_run_' || md5(current_schema());
    observed_table text;
begin
    execute format(
        $function$
        create or replace function %1$I.external_collector_run_id() returns bigint
        language plpgsql volatile as $body$
        declare
            run_id bigint := nullif(current_setting(%2$L, true), '')::bigint;
        begin
            if run_id is null then
                perform pg_advisory_xact_lock(7361002);
                insert into %1$I.collector_runs (kind, started_at, finished_at, status)
                values ('external', now(), now(), 'succeeded')
                returning id into run_id;
                perform set_config(%2$L, run_id::text, true);
            end if;
            return run_id;
        end
        $body$
        $function$,
        raw_schema, run_setting
    );

    foreach observed_table in array array['container_observations', 'container_observations_overflow'] loop
        execute format(
            'alter table %I alter column collector_run_id set default %I.external_collector_run_id()',
            observed_table, raw_schema
        );
        -- The default does what the trigger did; both would open two runs for one transaction's rows.
        execute format('drop trigger if exists assign_external_collector_run on %I', observed_table);
    end loop;
end
$runs$;

comment on function external_collector_run_id() is
'The collector run of kind external of the current transaction (opened by its first call): the default of collector_run_id for rows other writers insert.';
