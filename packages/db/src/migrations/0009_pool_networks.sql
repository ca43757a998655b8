-- Warm pools for both network policies. An `allowlist` slot's sandbox mounts an egress directory
-- named after the slot, under the egress root of the process that made it (`egress_scope`); only a
-- process whose proxy serves that root can attach to it, so only such a process claims it.
alter table pool_sandboxes
  add column network text not null default 'disabled' check (network in ('disabled', 'allowlist')),
  add column egress_scope text,
  add constraint pool_sandboxes_scope check ((network = 'allowlist') = (egress_scope is not null));

drop index pool_sandboxes_idle;
create index pool_sandboxes_idle on pool_sandboxes (memory_limit, network, egress_scope, created_at)
  where state = 'idle';

-- As in 0008, and the slot's network must be the container's (`p_network_policy->>'type'`), its
-- scope `p_egress_scope`. The new argument has a default: a replica not yet upgraded still calls
-- the ten-argument form, and claims only `disabled` slots.
drop function berth_pool_claim(text, text, text, bigint, timestamptz, integer, text, jsonb, integer, timestamptz);
create function berth_pool_claim(
  p_id text, p_project_id text, p_name text, p_created_at bigint, p_last_active_at timestamptz,
  p_expires_after_minutes integer, p_memory_limit text, p_network_policy jsonb,
  p_max_live integer, p_now timestamptz, p_egress_scope text default null
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
       and s.network = p_network_policy->>'type'
       and s.egress_scope is not distinct from p_egress_scope
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
