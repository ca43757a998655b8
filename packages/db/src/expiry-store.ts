import type pg from 'pg';
import type { ContainerRecord, ExpiryOutcome, ExpiryStore } from '@berth/core';
import { translatePgError } from './errors.js';
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
export class PgExpiryStore implements ExpiryStore {
  constructor(private readonly pool: pg.Pool) {}

  async reapOne(
    now: Date,
    exclude: readonly string[],
    work: (record: ContainerRecord) => Promise<ExpiryOutcome | void>,
  ): Promise<ContainerRecord | null> {
    const client = await this.pool.connect().catch((error: unknown) => {
      throw translatePgError(error);
    });
    let failed = false;
    try {
      await client.query('begin');
      const { rows } = await client.query<ContainerRow>(CLAIM_DUE, [now, exclude]);
      const row = rows[0];
      if (!row) {
        await client.query('commit');
        return null;
      }
      const record = rowToContainer(row);
      let outcome: ExpiryOutcome | void;
      try {
        outcome = await work(record);
      } catch (error) {
        failed = true;
        throw error;
      }
      // The archive's outcome is written here, under the claim: another connection's update of
      // this row would wait on the claim until the statement timeout.
      await client.query(
        `update containers set status = 'expired', updated_at = now(),
                archived_at = $2, archive_error = $3
          where id = $1`,
        [record.id, outcome?.archivedAt ?? null, outcome?.archiveError ?? null],
      );
      await client.query('commit');
      return { ...record, status: 'expired' };
    } catch (error) {
      await client.query('rollback').catch(() => {});
      throw failed ? error : translatePgError(error);
    } finally {
      client.release();
    }
  }

  async purge(before: Date, limit: number): Promise<number> {
    try {
      const result = await this.pool.query(
        `delete from containers where id in (
           select id from containers
            where status in ('expired', 'failed') and updated_at < $1
            limit $2)`,
        [before, limit],
      );
      return result.rowCount ?? 0;
    } catch (error) {
      throw translatePgError(error);
    }
  }
}
