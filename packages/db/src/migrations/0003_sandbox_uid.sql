-- Each sandbox runs as a uid of its own, so per-uid kernel limits (inotify instances, watches) are
-- never shared between tenants. Rows from before this migration ran their sandbox as uid 1000.
alter table containers add column sandbox_uid integer check (sandbox_uid > 0);
-- No two sandboxes that may still exist share a uid; an expired row's sandbox is already removed.
create unique index containers_live_sandbox_uid on containers (sandbox_uid)
  where status in ('creating', 'running', 'deleting', 'failed');
