-- The warm pool: sandboxes created and started ahead of any request, waiting to be claimed by a
-- create. A row is written before its sandbox exists (`filling`), so every pool sandbox Docker
-- lists has a row to be checked against; `idle` ones may be claimed. A claim deletes the row and
-- writes the container's row, with `pool_slot` naming the sandbox it took, in one transaction:
-- at every moment a pool sandbox belongs to exactly one row.
create table pool_sandboxes (
  slot_id      text primary key,
  memory_limit text not null,
  -- Its own uid from the start (a range of its own, apart from cold creates' uids).
  sandbox_uid  integer not null unique check (sandbox_uid > 0),
  state        text not null check (state in ('filling', 'idle')),
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now()
);
-- Claims take the oldest idle sandbox of a memory limit.
create index pool_sandboxes_idle on pool_sandboxes (memory_limit, created_at) where state = 'idle';

-- The pool sandbox a container was claimed from (its Docker labels still name the slot).
alter table containers add column pool_slot text;
create index containers_pool_slot on containers (pool_slot) where pool_slot is not null;
