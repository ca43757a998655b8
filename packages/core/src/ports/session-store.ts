/** `dead`: the interpreter went away (OOM, os._exit); `POST …/restart` brings a fresh one. */
export type SessionStatus = 'ready' | 'dead';

export interface SessionRecord {
  id: string;
  containerId: string;
  createdAt: number;
  status: SessionStatus;
  statusReason: string | null;
  lastRunAt: Date | null;
}

export interface SessionStore {
  /** Inserts unless the container already holds `max` sessions (atomic); false when over. */
  insert(record: SessionRecord, max: number): Promise<boolean>;
  get(containerId: string, id: string): Promise<SessionRecord | null>;
  list(containerId: string): Promise<SessionRecord[]>;
  setStatus(id: string, status: SessionStatus, reason: string | null): Promise<void>;
  ranAt(id: string, at: Date): Promise<void>;
  delete(containerId: string, id: string): Promise<boolean>;
}
