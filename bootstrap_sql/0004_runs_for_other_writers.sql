-- Every raw row reaches the marts on the next build, whoever wrote it (spec 3.4). The marts read
-- new observations by collector run id, so a row written without one (the predecessor's collector
-- still running during a migration, a psql \copy backfill) is given one here: the first such row
-- of a transaction opens a collector_runs row of kind 'external', and every such row of that
-- transaction joins it.
--
-- Race-free: run ids must become visible in increasing order, so the trigger takes the same
-- transaction-level advisory lock as the loader (raw_store.RUN_ORDER_LOCK_KEY) and holds it until
-- the writing transaction ends; a loader run meanwhile waits. Rows the loader writes already carry
-- their run id and skip the trigger (its WHEN clause), so collection pays nothing for it.
-- Rows written before this file was applied are not touched: the first build reads them whole.

do $runs$
declare
    raw_schema name := current_schema();
    run_setting text := 'jupyterhub_metrics.external_run_' || md5(current_schema());
    observed_table text;
begin
    execute format(
        $function$
        create or replace function %1$I.assign_external_collector_run() returns trigger
        language plpgsql as $body$
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
            new.collector_run_id := run_id;
            return new;
        end
        $body$
        $function$,
        raw_schema, run_setting
    );
    comment on function assign_external_collector_run() is
    'Gives rows written without a collector_run_id the id of a per-transaction collector run of kind external.';

    foreach observed_table in array array['container_observations', 'container_observations_overflow'] loop
        if not exists (
            select from pg_trigger
            where tgname = 'assign_external_collector_run' and tgrelid = observed_table::regclass
        ) then
            execute format(
                'create trigger assign_external_collector_run before insert on %I for each row'
                ' when (new.collector_run_id is null) execute function assign_external_collector_run()',
                observed_table
            );
        end if;
    end loop;
end
$runs$;

comment on column collector_runs.kind is
'collect (the loader), users_sync (directory), or external (rows another writer inserted without a run id).';
