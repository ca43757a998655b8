import type { ContainerRecord, ExpiryOutcome, ExpiryStore } from '@berth/core';
import { PgStore } from './sql.js';
import { rowToContainer, type ContainerRow } from './container-rows.js';

const CLAIM_DUE = `
  select * from containers
   where status = 'running'
     and last_active_at + expires_after_minutes * interval '1 minute' <= $1
     and id <> all($2::text[])
   order by last_active_at
   limit 1
   for no key update skip locked`;

/**
 * The claim is `for no key update`, not `for update`: while it is held the archiver inserts
 * container_files rows, whose foreign key takes a key-share lock on the same row.
 *
 * Expiry claims are row locks held for the length of one removal: a replica that dies mid-removal
 * releases its claim with its connection, so nothing stays claimed forever.
 */
export class PgExpiryStore extends PgStore implements ExpiryStore {
  reapOne(
    now: Date,
    exclude: readonly string[],
    work: (record: ContainerRecord) => Promise<ExpiryOutcome | void>,
  ): Promise<ContainerRecord | null> {
    return this.sql.transaction(async (tx) => {
      const row = await tx.one<ContainerRow>(CLAIM_DUE, [now, exclude]);
      if (!row) return null;
      const record = rowToContainer(row);
      const outcome = await work(record);
      // The archive's outcome is written here, under the claim: another connection's update of
      // this row would wait on the claim until the statement timeout.
      await tx.query(
        `update containers set status = 'expired', updated_at = $2,
                archived_at = $3, archive_error = $4
          where id = $1`,
        [record.id, this.clock.now(), outcome?.archivedAt ?? null, outcome?.archiveError ?? null],
      );
      return { ...record, status: 'expired' as const };
    });
  }

  purge(before: Date, limit: number): Promise<number> {
    return this.sql.run(
      `delete from containers where id in (
         select id from containers
          where status in ('expired', 'failed') and updated_at < $1
          limit $2)`,
      [before, limit],
    );
  }
}
