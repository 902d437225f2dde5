-- The hub's own view (spec 3.7), read from JupyterHub's REST API at each collection where HUB_API_URL is set.

-- Per collection, each active server: when the hub last saw activity on it, when it started, whether a start or
-- stop is pending, whether it is ready. Users map to observations by the hub username (users.user_id).
create table if not exists hub_servers (
    collector_run_id bigint not null,
    user_name text not null,
    server_name text not null,
    last_activity timestamptz,
    started timestamptz,
    pending text,
    ready boolean,
    primary key (collector_run_id, user_name, server_name)
);

comment on table hub_servers is
'Per collection, every active server the hub reported (GET /hub/api/users?state=active). Written only by the loader.';

-- Group memberships (courses, labs), recorded by a collection when they differ from the last ones recorded: the
-- whole set at that run (collector_runs.hub_memberships_recorded says which runs recorded one, so an empty set is a
-- record too). Membership history is the sequence of recorded sets.
create table if not exists hub_group_members (
    collector_run_id bigint not null,
    group_name text not null,
    user_name text not null,
    primary key (collector_run_id, group_name, user_name)
);

comment on table hub_group_members is
'The hub''s group memberships (GET /hub/api/groups), recorded whole at each collection where they changed.';

alter table collector_runs
    add column if not exists hub_servers_listed integer,
    add column if not exists hub_groups_listed integer,
    add column if not exists hub_memberships_recorded boolean,
    add column if not exists pending_pods_recorded integer;

comment on column collector_runs.hub_servers_listed is
'Active servers the hub reported at this collection; null where the hub was not read.';
comment on column collector_runs.hub_memberships_recorded is
'True where this collection recorded the whole set of group memberships (they changed): hub_group_members.';
