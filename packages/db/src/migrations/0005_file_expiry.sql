-- Files API `expires_after` (anchor created_at): unix seconds after which a file answers 404 and
-- the reaper removes its row and bytes. Null: kept until deleted.
alter table files add column expires_at bigint;
create index files_expiring on files (expires_at) where expires_at is not null;
