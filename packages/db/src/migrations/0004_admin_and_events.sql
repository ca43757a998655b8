-- Admin keys read across projects and belong to none; a project key always has its project.
alter table api_keys add column admin boolean not null default false;
alter table api_keys alter column project_id drop not null;
alter table api_keys add constraint api_keys_scope
  check ((admin and project_id is null) or (not admin and project_id is not null));

-- The lifecycle event log operators read (created, expired, deleted, failed, oom, ...). Rows
-- outlive their container (no foreign key): an event about a purged container still happened.
create table container_events (
  id           bigint generated always as identity primary key,
  at           timestamptz not null default now(),
  container_id text not null,
  project_id   text,
  kind         text not null check (kind in ('created', 'expired', 'deleted', 'failed', 'oom',
                                              'exec_timed_out', 'egress_denied')),
  reason       text
);
-- Newest first by id (the keyset), by container, and the retention purge by time.
create index container_events_container on container_events (container_id, id);
create index container_events_at on container_events (at);
-- No index for the admin list (every visible container, newest first, across projects): one on
-- (created_at, id) over visible rows is also picked for a project's own list whenever that
-- project holds most rows, and then reads past other projects' rows. Expired rows are purged
-- after the retention, so the admin list's scan stays the size of the live fleet.
