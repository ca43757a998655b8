-- Stateful Python sessions inside a container (ours). A row exists while its interpreter may.
create table container_sessions (
  id            text primary key,
  container_id  text not null references containers (id) on delete cascade,
  -- Unix seconds; equal to the id's hex time prefix.
  created_at    bigint not null,
  status        text not null check (status in ('ready', 'dead')),
  status_reason text,
  last_run_at   timestamptz
);
create index container_sessions_by_container on container_sessions (container_id, created_at, id);

-- Files kept after expiry: each file's archive outcome (null while the container runs).
-- `over_cap`: past the container's archive cap, not kept; `failed`: could not be read or stored;
-- `purged`: its bytes were removed from the blob store at the end of retention.
alter table container_files add column archive_state text
  check (archive_state in ('archived', 'over_cap', 'failed', 'purged'));
-- When the container's /mnt/data was archived (null: never, e.g. archiving was off or it failed).
alter table containers add column archived_at timestamptz;
-- Why the archive failed as a whole, for operators.
alter table containers add column archive_error text;
