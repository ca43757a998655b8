import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const IMAGES_ENV = fileURLToPath(new URL('../../../.berth/images.env', import.meta.url));

/** A setting from the environment, else from what provisioning chose (`.berth/images.env`). */
export function provisionedSetting(key: string): string | undefined {
  if (process.env[key]) return process.env[key];
  if (!existsSync(IMAGES_ENV)) return undefined;
  const line = readFileSync(IMAGES_ENV, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${key}=`));
  return line?.slice(key.length + 1).trim() || undefined;
}

/** The official image by default; offline, the local equivalent provisioning built. */
export const postgresImage = (): string =>
  provisionedSetting('BERTH_POSTGRES_IMAGE') ?? 'postgres:15-bookworm';
