-- A pending pod of a collection is recorded once, as before, now keyed with its user first: a pod belongs to one
-- user, so no two rows the old key allowed differ here, and the key holds the column Citus distributes the table
-- by (bootstrap_sql/repeatable/distributed_tables.sql), which every unique index of a distributed table must.
create unique index if not exists pending_pods_user_key
on pending_pods (user_email, "timestamp", coalesce(cluster, ''), coalesce(namespace, ''), pod_name);

drop index if exists pending_pods_key;
