-- A volume's days in order: the marts carry a volume's last known figures forward from its latest row before a
-- point (int_storage_volume_days), which the key's index (it leads with the day) cannot find without reading every
-- volume of every day since.
create index if not exists storage_observations_volume on storage_observations (volume_name, layout, day);
