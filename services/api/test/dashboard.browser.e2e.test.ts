import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { describe, expect } from 'vitest';
import { dockerExec } from '@berth/testkit';
import { berthTest } from './fixtures.js';

/** Where the screenshot lands (gitignored); CI keeps it as an artifact. */
const OUTPUT = fileURLToPath(new URL('../../../test-results/dashboard/', import.meta.url));
const requested: string[] = [];

/**
 * The little of the DOM the page callbacks touch. They run in the browser, but are type-checked
 * here, where the project's lib has no DOM (and should not: the rest of it runs in Node).
 */
interface PageGlobals {
  sessionStorage: { getItem(key: string): string | null };
}
interface StyledElement {
  style: { width: string };
}

const it = berthTest()
  .extend('adminKey', { scope: 'file' }, ({ berth }) => berth.newAdminKey('browser'))
  // One page for the file, so sign-in carries from test to test; every URL it asks for is kept.
  .extend('page', { scope: 'file' }, async ({ berth: _ }, { onCleanup }) => {
    // Debian's chromium (infra/provision.sh installs it): nothing is downloaded, nothing phones home.
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    onCleanup(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
    page.on('request', (r) => requested.push(r.url()));
    return page;
  });
it.beforeAll(async ({ adminKey: _, page: __ }) => {});

describe('the dashboard, in a real browser', () => {
  it('refuses a project key at sign-in', async ({ berth, page }) => {
    await page.goto(`${berth.url}/dashboard?poll_ms=250`);
    await page.fill('#key', berth.apiKey);
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('#signin-error')).toBe('not an admin key');
    expect(await page.isVisible('#app')).toBe(false);
  });

  it('shows a container created through the API with its memory bar, and drops it after delete', async ({
    berth,
    adminKey,
    page,
  }) => {
    await page.fill('#key', adminKey);
    await page.click('button[type=submit]');
    await page.waitForSelector('#app:not([hidden])');
    // The key lives in this tab's sessionStorage only.
    expect(
      await page.evaluate(() =>
        (globalThis as unknown as PageGlobals).sessionStorage.getItem('berth.adminKey'),
      ),
    ).toBe(adminKey);

    const c = await berth.client.containers.create({ name: 'seen-in-browser', memory_limit: '1g' });
    await berth.client.containers.create({ name: 'second', memory_limit: '4g' }).then(async (x) => {
      // A second, already gone again, so the chart and the event list have something to show.
      await berth.client.containers.delete(x.id);
    });
    // Something to see on the bar: a process holding 300 MiB.
    await dockerExec(c.id, [
      'sh',
      '-c',
      `nohup python3 -c 'import time; x = bytearray(300 << 20); x[::4096] = b"x" * len(x[::4096]); time.sleep(600)' >/dev/null 2>&1 &`,
    ]);
    const row = `tr[data-id="${c.id}"]`;
    // The bar fills once live usage (cgroup files) has been read for it.
    const bar = `${row} .membar`;
    await expect
      .poll(async () => Number((await page.getAttribute(bar, 'data-used')) || 0), {
        timeout: 15_000,
      })
      .toBeGreaterThan(300 * 1024 ** 2);
    const used = Number(await page.getAttribute(bar, 'data-used'));
    expect(used).toBeLessThan(1024 ** 3);
    const width = await page.$eval(`${bar} .fill`, (e) => (e as StyledElement).style.width);
    expect(Number.parseFloat(width)).toBeGreaterThan(25);
    expect(Number(await page.getAttribute(bar, 'data-limit'))).toBe(1024 ** 3);
    expect(await page.textContent(`${row} .pill`)).toBe('running');
    expect(await page.textContent(`${row}`)).toContain('seen-in-browser');
    await page.waitForSelector('#events tr[data-kind="deleted"]');
    await page.waitForSelector('#chart-svg svg path');
    expect(await page.textContent('[data-card="running"] .n')).toBe('1');

    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: `${OUTPUT}dashboard.png`, fullPage: true });

    await berth.client.containers.delete(c.id);
    await page.waitForSelector(row, { state: 'detached', timeout: 15_000 });
    await expect.poll(() => page.textContent('[data-card="running"] .n')).toBe('0');

    // Every asset and call went to Berth itself: no CDN, nothing else.
    expect(requested.length).toBeGreaterThan(0);
    expect(requested.filter((u) => !u.startsWith(berth.url))).toEqual([]);
  });
});
