-- Files API objects; their bytes live in the blob store under the file id.
create table files (
  id         text primary key,
  project_id text not null references projects (id) on delete cascade,
  filename   text not null,
  purpose    text not null,
  bytes      bigint not null check (bytes >= 0),
  -- Unix seconds; equal to the id's hex time prefix (keyset cursor).
  created_at bigint not null
);
create index files_page on files (project_id, created_at, id);
create index files_purpose_page on files (project_id, purpose, created_at, id);

-- Files inside a container's /mnt/data: uploads (`user`) and what code wrote (`assistant`).
create table container_files (
  id           text primary key,
  container_id text not null references containers (id) on delete cascade,
  path         text not null,
  bytes        bigint not null check (bytes >= 0),
  source       text not null check (source in ('user', 'assistant')),
  created_at   bigint not null,
  -- When Berth last wrote or saw a change of this row; a listing older than it can't drop it.
  written_at   timestamptz not null default now(),
  unique (container_id, path)
);
create index container_files_page on container_files (container_id, created_at, id);
