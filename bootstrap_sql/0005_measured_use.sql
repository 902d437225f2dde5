-- The notebook container's measured use at collection time, from the metrics API (metrics.k8s.io),
-- where it answers (spec 3.1): null where unknown. Nullable, so every existing row stays valid.

alter table container_observations
    add column if not exists cpu_usage_cores numeric,
    add column if not exists memory_usage_bytes bigint;

alter table container_observations_overflow
    add column if not exists cpu_usage_cores numeric,
    add column if not exists memory_usage_bytes bigint;

comment on column container_observations.cpu_usage_cores is
'CPU the notebook container used at collection time (metrics API), in cores; null where unknown.';
comment on column container_observations.memory_usage_bytes is
'Memory the notebook container used at collection time (metrics API, working set), in bytes; null where unknown.';
