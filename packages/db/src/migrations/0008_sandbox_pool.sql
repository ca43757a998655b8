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

-- A claim in one round trip (every round trip counts when a create must answer in milliseconds).
-- In one transaction: the project's live cap under its advisory lock (as PgContainerStore's
-- insertCreating), the oldest idle slot of the limit under a row lock other claimers skip, the
-- slot's row deleted, the container's `creating` row written with the slot's uid and `pool_slot`.
-- VOLATILE: each statement sees what committed before it, so the count follows the lock.
create function berth_pool_claim(
  p_id text, p_project_id text, p_name text, p_created_at bigint, p_last_active_at timestamptz,
  p_expires_after_minutes integer, p_memory_limit text, p_network_policy jsonb,
  p_max_live integer, p_now timestamptz
) returns table (outcome text, slot_id text, sandbox_uid integer, state text, updated_at timestamptz)
language plpgsql volatile as $$
declare
  live integer;
  taken pool_sandboxes%rowtype;
begin
  perform pg_advisory_xact_lock(hashtext('berth:project:' || p_project_id));
  select count(*) into live from containers c
   where c.project_id = p_project_id and c.status in ('creating', 'running')
     and c.last_active_at + c.expires_after_minutes * interval '1 minute' > p_now;
  if live >= p_max_live then
    return query select 'over_cap'::text, null::text, null::integer, null::text, null::timestamptz;
    return;
  end if;
  delete from pool_sandboxes p where p.slot_id = (
    select s.slot_id from pool_sandboxes s
     where s.memory_limit = p_memory_limit and s.state = 'idle'
     order by s.created_at limit 1 for update skip locked)
  returning * into taken;
  if taken.slot_id is null then
    return query select 'empty'::text, null::text, null::integer, null::text, null::timestamptz;
    return;
  end if;
  insert into containers (id, project_id, name, created_at, status, status_reason, last_active_at,
                          expires_after_minutes, memory_limit, network_policy, sandbox_uid, pool_slot)
  values (p_id, p_project_id, p_name, p_created_at, 'creating', null, p_last_active_at,
          p_expires_after_minutes, p_memory_limit, p_network_policy, taken.sandbox_uid, taken.slot_id);
  return query select 'claimed'::text, taken.slot_id, taken.sandbox_uid, taken.state, taken.updated_at;
end
$$;
