-- Skills (/v1/skills): a skill is a named series of immutable versions; each version's zip
-- lives in the blob store under `blob_key`. The skill row shows its default version's name and
-- description, as upstream does.
create table skills (
  id              text primary key,
  project_id      text not null references projects (id) on delete cascade,
  name            text not null,
  description     text not null,
  -- Unix seconds; equal to the id's hex time prefix (keyset cursor).
  created_at      bigint not null,
  default_version integer not null check (default_version > 0),
  latest_version  integer not null check (latest_version > 0),
  -- Version numbers are never reused, even after a delete.
  last_version    integer not null check (last_version > 0)
);
create index skills_page on skills (project_id, created_at, id);

create table skill_versions (
  id          text primary key,
  skill_id    text not null references skills (id) on delete cascade,
  version     integer not null check (version > 0),
  name        text not null,
  description text not null,
  created_at  bigint not null,
  bytes       bigint not null check (bytes >= 0),
  blob_key    text not null,
  unique (skill_id, version)
);

-- The skills placed in a container at create, as the container object shows them.
create table container_skills (
  container_id text not null references containers (id) on delete cascade,
  position     integer not null,
  name         text not null,
  description  text not null,
  path         text not null,
  primary key (container_id, position)
);
