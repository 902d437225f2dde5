-- Superseded by bootstrap_sql/repeatable/hourly_objects.sql, which runs at every `db migrate`.
--
-- The first version of this file created the TimescaleDB extension through the raw schema's
-- search_path and read a superuser-only setting to detect it. Databases that applied that version
-- keep what it created (db migrate accepts its recorded checksum, see loader/migrate.py); the
-- repeatable step finds the extension wherever it lives and adds what is missing.
select 1;
