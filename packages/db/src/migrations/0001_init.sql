-- Projects own API keys and containers; a project sees only its own objects.
create table projects (
  id         text primary key,
  name       text not null unique,
  created_at timestamptz not null default now()
);

-- Only the sha256 of a key is stored; `prefix` lets people tell keys apart.
create table api_keys (
  id         text primary key,
  project_id text not null references projects (id) on delete cascade,
  name       text not null,
  prefix     text not null,
  hash       bytea not null unique,
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);

create table containers (
  id                    text primary key,
  project_id            text not null references projects (id),
  name                  text not null,
  -- Unix seconds; equal to the hex time prefix of the id, so an id alone is a keyset cursor.
  created_at            bigint not null,
  status                text not null
                          check (status in ('creating', 'running', 'expired', 'deleting', 'failed')),
  status_reason         text,
  last_active_at        timestamptz not null,
  expires_after_minutes integer not null check (expires_after_minutes > 0),
  memory_limit          text not null,
  network_policy        jsonb not null,
  updated_at            timestamptz not null default now()
);

-- Keyset pages over the visible containers, with and without the name filter.
create index containers_page on containers (project_id, created_at, id)
  where status in ('running', 'expired', 'failed');
create index containers_name_page on containers (project_id, name, created_at, id)
  where status in ('running', 'expired', 'failed');
-- The reaper's due list and the live-container cap.
create index containers_running on containers (last_active_at)
  where status = 'running';
create index containers_live_by_project on containers (project_id)
  where status in ('creating', 'running');
-- Work a crash left half-done, for the reconciler.
create index containers_unfinished on containers (status, updated_at)
  where status in ('creating', 'deleting');
