import type {
  ClaimOutcome,
  ContainerRecord,
  MemoryLimit,
  PoolNetwork,
  PoolSlot,
  PoolStore,
  ReserveOutcome,
} from '@berth/core';
import { PgStore } from './sql.js';
import { policyToJson } from './container-rows.js';

interface SlotRow {
  slot_id: string;
  memory_limit: string;
  network: PoolNetwork;
  egress_scope: string | null;
  sandbox_uid: number;
  state: 'filling' | 'idle';
  updated_at: Date;
}

const toSlot = (r: SlotRow): PoolSlot => ({
  slotId: r.slot_id,
  memoryLimit: r.memory_limit as MemoryLimit,
  network: r.network,
  egressScope: r.egress_scope,
  sandboxUid: r.sandbox_uid,
  state: r.state,
  updatedAt: r.updated_at,
});

/** Statuses whose sandbox may still exist: a uid held by one of them is taken. */
const UID_HOLDING = `('creating', 'running', 'deleting', 'failed')`;

export class PgPoolStore extends PgStore implements PoolStore {
  reserve(slot: PoolSlot, target: number): Promise<ReserveOutcome> {
    return this.sql
      .transaction(async (client) => {
        // Serialises fillers of one pool, on every replica, so the count stays exact.
        const pool = [slot.memoryLimit, slot.network, slot.egressScope ?? ''].join('/');
        await client.query(`select pg_advisory_xact_lock(hashtext('berth:pool:' || $1))`, [pool]);
        const { rows } = await client.query<{ n: number }>(
          `select count(*)::int as n from pool_sandboxes
            where memory_limit = $1 and network = $2 and egress_scope is not distinct from $3`,
          [slot.memoryLimit, slot.network, slot.egressScope],
        );
        if ((rows[0]?.n ?? 0) >= target) return 'full';
        const inserted = await client.query(
          `insert into pool_sandboxes (slot_id, memory_limit, network, egress_scope, sandbox_uid, state)
         values ($1, $2, $3, $4, $5, 'filling') on conflict (sandbox_uid) do nothing`,
          [slot.slotId, slot.memoryLimit, slot.network, slot.egressScope, slot.sandboxUid],
        );
        if (inserted.rowCount === 0) return 'uid_taken';
        // Checked after the insert, on a fresh snapshot: a claim moving this uid from a slot to a
        // container committed before our insert could pass the unique index, and shows up here.
        const taken = await client.query(
          `select 1 from containers where sandbox_uid = $1 and status in ${UID_HOLDING}`,
          [slot.sandboxUid],
        );
        if ((taken.rowCount ?? 0) > 0) throw new UidTaken();
        return 'reserved';
      })
      .catch((error: unknown) => {
        if (error instanceof UidTaken) return 'uid_taken';
        throw error;
      });
  }

  async markIdle(slotId: string): Promise<void> {
    await this.sql.query(
      `update pool_sandboxes set state = 'idle', updated_at = now() where slot_id = $1`,
      [slotId],
    );
  }

  async remove(slotId: string): Promise<void> {
    await this.sql.query(`delete from pool_sandboxes where slot_id = $1`, [slotId]);
  }

  async abandonClaim(containerId: string): Promise<void> {
    await this.sql.query(`delete from containers where id = $1 and status = 'creating'`, [
      containerId,
    ]);
  }

  /** One round trip: the transaction is the function `berth_pool_claim` (migrations 0008, 0009). */
  async claim(
    record: ContainerRecord,
    maxLive: number,
    now: Date,
    egressScope: string | null,
  ): Promise<ClaimOutcome> {
    const { rows } = await this.sql.query<{
      outcome: 'claimed' | 'empty' | 'over_cap';
      slot_id: string | null;
      sandbox_uid: number | null;
      state: 'filling' | 'idle' | null;
      updated_at: Date | null;
    }>(`select * from berth_pool_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, [
      record.id,
      record.projectId,
      record.name,
      record.createdAt,
      record.lastActiveAt,
      record.expiresAfterMinutes,
      record.memoryLimit,
      policyToJson(record.networkPolicy),
      maxLive,
      now,
      egressScope,
    ]);
    const row = rows[0];
    if (!row || row.outcome === 'empty') return { outcome: 'empty' };
    if (row.outcome === 'over_cap') return { outcome: 'over_cap' };
    return {
      outcome: 'claimed',
      slot: toSlot({
        slot_id: row.slot_id!,
        memory_limit: record.memoryLimit,
        network: record.networkPolicy.type,
        egress_scope: egressScope,
        sandbox_uid: row.sandbox_uid!,
        state: row.state ?? 'idle',
        updated_at: row.updated_at ?? now,
      }),
    };
  }

  async list(): Promise<PoolSlot[]> {
    const { rows } = await this.sql.query<SlotRow>(
      `select * from pool_sandboxes order by created_at limit 10000`,
    );
    return rows.map(toSlot);
  }

  async liveSlots(slotIds: string[]): Promise<Set<string>> {
    // The statuses of PgContainerStore.liveIds: a failed container's sandbox is removed too.

    // One statement, one snapshot: a claim moves a slot from one table to the other atomically.
    const { rows } = await this.sql.query<{ slot: string }>(
      `select slot_id as slot from pool_sandboxes where slot_id = any($1)
         union
         select pool_slot from containers
          where pool_slot = any($1) and status in ('creating', 'running', 'deleting')`,
      [slotIds],
    );
    return new Set(rows.map((r) => r.slot));
  }
}

class UidTaken extends Error {}
