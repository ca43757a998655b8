import { describe, expect } from 'vitest';
import { test } from './fixtures.js';

interface LogEntry {
  level: number;
  msg: string;
  sendBuffer?: { asked: number; effective: number | null; note?: string };
}

const startLine = (lines: string[]): LogEntry | undefined =>
  lines.map((l) => JSON.parse(l) as LogEntry).find((e) => e.msg.startsWith('socket send buffer'));

describe('the send buffer of the sockets carrying sandboxes’ bytes', () => {
  test('is logged at start with what the kernel gave, and as off with 0', async ({ berthWith }) => {
    const on: string[] = [];
    await berthWith(
      { BERTH_LOG_LEVEL: 'info', BERTH_SOCKET_SEND_BUFFER: String(1024 * 1024) },
      { logLines: on },
    );
    const asked = startLine(on);
    expect(asked?.level).toBe(30);
    // The kernel books twice what was asked (root, as in CI, passes net.core.wmem_max).
    expect(asked?.sendBuffer).toEqual({ asked: 1024 * 1024, effective: 2 * 1024 * 1024 });

    const off: string[] = [];
    await berthWith({ BERTH_LOG_LEVEL: 'info', BERTH_SOCKET_SEND_BUFFER: '0' }, { logLines: off });
    expect(startLine(off)?.sendBuffer).toEqual({
      asked: 0,
      effective: null,
      note: 'off: the kernel default is kept',
    });
  });
});
