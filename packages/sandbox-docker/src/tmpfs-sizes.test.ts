import { describe, expect, it } from 'vitest';
import { defaultSandboxLimits, tmpfsSizes } from './docker-sandbox-runtime.js';

const GIB = 1024 ** 3;

describe('tmpfsSizes', () => {
  it.each([1, 4, 16, 64])(
    'fits /mnt/data, /tmp and /dev/shm inside %ig with room for processes',
    (g) => {
      const s = tmpfsSizes(g * GIB, defaultSandboxLimits);
      expect(s.data + s.tmp + s.shm).toBeLessThanOrEqual(0.75 * g * GIB);
      expect(s.data).toBeLessThanOrEqual(defaultSandboxLimits.dataSizeBytes);
      expect(s.tmp).toBeLessThanOrEqual(defaultSandboxLimits.tmpSizeBytes);
    },
  );
  it('gives a 1g sandbox half of it for /mnt/data', () => {
    expect(tmpfsSizes(GIB, defaultSandboxLimits).data).toBe(GIB / 2);
  });
});
