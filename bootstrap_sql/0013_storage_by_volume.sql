-- A volume's days in order: the marts carry a volume's last known figures forward from its latest row before a
-- point (int_storage_volume_days), which the key's index (it leads with the day) cannot find without reading every
-- volume of every day since.
create index if not exists storage_observations_volume on storage_observations (volume_name, layout, day);

-- A collection reads storage at the first collection of each period (COLLECT_STORAGE_EVERY_MINUTES): the latest
-- run of its cluster that read it, found without reading every run since.
create index if not exists collector_runs_storage_read
on collector_runs (coalesce(cluster, ''), observed_at) where storage_volumes_listed is not null;
