import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { UI_DIR } from '../../src/api/routes/ui.js';

/**
 * The web UI in a real browser (Debian's chromium driven by playwright-core) against a real
 * controller listening on a socket. `npm run build` makes the UI (dist/ui). With
 * PLINTH_UI_SCREENSHOTS=DIR the main pages are saved there (docs/ui holds the ones the docs show).
 */
const CHROMIUM = process.env.PLINTH_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.PLINTH_UI_SCREENSHOTS;
const SECRET_KEY = Buffer.alloc(32, 5).toString('base64');

describe.each(backends)('web UI on $name', (backend) => {
  let t: Awaited<ReturnType<typeof freshController>>;
  let url: string;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const requested: string[] = [];

  const stateOf = async (name: string) => (await t.api('GET', `/api/v1/machines/${name}`)).json().state as string;
  const row = (name: string) => page.getByRole('table', { name: 'Machines' }).locator(`tr[data-machine="${name}"]`);
  const shot = async (name: string) => {
    if (!SHOTS) return;
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  };

  beforeAll(async () => {
    expect(existsSync(`${UI_DIR}/index.html`), 'the UI is built (npm run build)').toBe(true);
    t = await freshController(backend, { secretKey: SECRET_KEY });
    url = await t.controller.listen();
    for (let i = 1; i <= 6; i++) {
      const res = await t.api('POST', '/api/v1/machines', {
        name: `node-0${i}`,
        identity: { serial: `SN-${i}`, macs: [`52:54:00:00:10:0${i}`] },
        tags: { rack: i <= 3 ? 'r1' : 'r2' },
      });
      expect(res.statusCode).toBe(201);
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('request', (r) => requested.push(new URL(r.url()).pathname));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('serves the app at / and at page addresses, files with their types, and leaves the API its 404s', async () => {
    const root = await fetch(`${url}/`, { headers: { accept: 'text/html' } });
    expect(root.status).toBe(200);
    expect(root.headers.get('content-type')).toMatch(/^text\/html/);
    expect(root.headers.get('content-security-policy')).toContain("default-src 'self'");
    const deep = await fetch(`${url}/machines/node-01`, { headers: { accept: 'text/html' } });
    expect(deep.status).toBe(200);
    expect(await deep.text()).toContain('/app.js');
    const js = await fetch(`${url}/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect((await fetch(`${url}/app.css`)).headers.get('content-type')).toMatch(/^text\/css/);
    const api = await fetch(`${url}/api/v1/nope`, { headers: { accept: 'text/html' } });
    expect(api.status).toBe(404);
    expect(((await api.json()) as { error: { code: string } }).error.code).toBe('not_found');
    expect((await fetch(`${url}/missing.js`)).status).toBe(404);
    expect((await fetch(`${url}/..%2f..%2fpackage.json`)).status).toBe(404);
  });

  it('signs in with a token and lists the machines with their states', async () => {
    await page.goto(`${url}/`);
    await shot('signin');
    await page.getByLabel('Token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    consoleErrors.length = 0; // the browser logs the refused request (401) itself
    await page.getByLabel('Token').fill(t.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const table = page.getByRole('table', { name: 'Machines' });
    await row('node-06').waitFor();
    expect(await table.locator('tbody tr[data-machine]').count()).toBe(6);
    expect(await row('node-01').locator('[data-column="state"]').innerText()).toBe('enrolled');
    await expect.poll(() => page.getByRole('region', { name: 'Counts by state' }).innerText()).toContain('enrolled 6');
    expect(await page.evaluate('sessionStorage.getItem("plinth.session")')).toContain(t.adminToken);
  });

  it('filters by tag, and a state changed through the API shows without reloading', async () => {
    await page.getByRole('textbox', { name: 'Tag' }).fill('rack=r2');
    await page.getByRole('textbox', { name: 'Tag' }).press('Enter');
    await expect.poll(() => page.locator('table[aria-label="Machines"] tbody tr[data-machine]').count()).toBe(3);
    expect(page.url()).toContain('tag=rack%3Dr2');
    await expect.poll(() => page.getByRole('region', { name: 'Counts by state' }).innerText()).toContain('all 3');
    await page.evaluate('window.notReloaded = true');

    expect((await t.api('POST', '/api/v1/machines/node-04/actions/retire', {})).statusCode).toBe(200);
    await row('node-04').locator('[data-column="state"]', { hasText: 'retired' }).waitFor();
    expect(await page.evaluate('window.notReloaded')).toBe(true);
    // The page follows the controller's event stream; it does not poll.
    expect(requested).toContain('/api/v1/events/stream');
    await shot('machines');

    // Columns are chosen, rows grouped by state.
    await page.getByText('Columns', { exact: true }).click();
    await page.getByLabel('Serial').check();
    await row('node-05').locator('[data-column="serial"]', { hasText: 'SN-5' }).waitFor();
    await page.getByLabel('Group by state').check();
    const groups = page.getByRole('table', { name: 'Machines' }).locator('tr.group');
    await expect.poll(() => groups.allInnerTexts()).toEqual(['enrolled (2 on this page)', 'retired (1 on this page)']);
    await page.getByLabel('Group by state').uncheck();
  });

  it("opens a machine's page, sees its events and runs an action its state allows", async () => {
    await row('node-05').getByRole('link', { name: 'node-05' }).click();
    await page.getByRole('heading', { name: 'node-05' }).waitFor();
    const events = page.getByRole('table', { name: 'Events' });
    await events.getByRole('cell', { name: 'enroll', exact: true }).waitFor();
    await page.getByRole('button', { name: 'inspect' }).click();
    await expect.poll(() => stateOf('node-05')).not.toBe('enrolled');
    const now = await stateOf('node-05');
    await page.getByTestId('machine-state').filter({ hasText: now }).waitFor();
    await events.getByRole('cell', { name: 'inspect', exact: true }).waitFor();
    await shot('machine');
  });

  it('runs a bulk action on everything a filter matches, after a confirmation saying how many', async () => {
    await page.getByRole('link', { name: '← Machines' }).click();
    await page.getByRole('textbox', { name: 'Tag' }).fill('rack=r1');
    await page.getByRole('textbox', { name: 'Tag' }).press('Enter');
    await expect.poll(() => page.locator('table[aria-label="Machines"] tbody tr[data-machine]').count()).toBe(3);
    await page.getByLabel('Action', { exact: true }).selectOption('retire');
    await page.getByRole('button', { name: 'Apply to all 3 matching' }).click();
    expect(await page.getByRole('alertdialog').innerText()).toContain('retire 3 machines?');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('status').filter({ hasText: 'retire: 3 done' }).waitFor();
    for (const n of ['node-01', 'node-02', 'node-03']) expect(await stateOf(n)).toBe('retired');
    expect(await stateOf('node-06')).toBe('enrolled');
    await row('node-03').locator('[data-column="state"]', { hasText: 'retired' }).waitFor();
  });

  it('uploads an image with a progress bar, shows a pool with its entries, registers an appliance', async () => {
    await page.getByRole('link', { name: 'Images', exact: true }).click();
    await page.getByRole('heading', { name: 'Images' }).waitFor();
    const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
    await page.getByLabel('Image name').fill('blob-1');
    await page.getByLabel('Kind').selectOption('file');
    await page.getByLabel('File').setInputFiles({ name: 'blob.bin', mimeType: 'application/octet-stream', buffer: bytes });
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.getByRole('status').filter({ hasText: 'blob-1 uploaded' }).waitFor();
    await page.getByRole('table', { name: 'Images' }).getByRole('cell', { name: 'blob-1' }).waitFor();
    expect((await t.api('GET', '/api/v1/images/blob-1')).json()).toMatchObject({ kind: 'file', sizeBytes: bytes.length });

    const applied = await t.api('POST', '/api/v1/profiles/apply', { pools: [{ name: 'hosts', entries: [{ hostname: 'h1' }, { hostname: 'h2' }] }] });
    expect(applied.statusCode, applied.body).toBe(200);
    await page.getByRole('link', { name: 'Pools', exact: true }).click();
    await page.getByRole('button', { name: 'hosts' }).click();
    const entries = page.getByRole('table', { name: 'Entries of hosts' });
    await entries.getByRole('cell', { name: 'hostname=h2' }).waitFor();
    expect(await entries.locator('tbody tr').count()).toBe(2);
    await shot('pools');

    await page.getByRole('link', { name: 'Appliances', exact: true }).click();
    await page.getByLabel('Name', { exact: true }).fill('rack-1-pdu');
    await page.getByLabel('Type').selectOption('manual');
    await page.getByLabel('Address').fill('rack-1');
    await page.getByRole('button', { name: 'Register' }).click();
    await page.getByRole('table', { name: 'Appliances' }).getByRole('cell', { name: 'rack-1-pdu', exact: true }).waitFor();
    expect((await t.api('GET', '/api/v1/appliances/rack-1-pdu')).json()).toMatchObject({ type: 'manual', address: 'rack-1' });
  });

  it("shows the controller's settings without its secrets", async () => {
    await page.getByRole('link', { name: 'Settings', exact: true }).click();
    const table = page.getByRole('table', { name: 'Configuration' });
    await table.getByRole('cell', { name: 'tftp.enabled', exact: true }).waitFor();
    expect(await table.innerText()).toContain(t.config.dataDir);
    expect(await page.content()).not.toContain(SECRET_KEY);
    await shot('settings');
  });

  it('is usable from the keyboard: Tab reaches a machine and Enter opens it', async () => {
    await page.goto(`${url}/machines`);
    await row('node-01').waitFor();
    let focused = '';
    for (let i = 0; i < 80 && focused !== 'node-01'; i++) {
      await page.keyboard.press('Tab');
      focused = String(await page.evaluate('document.activeElement && document.activeElement.textContent'));
    }
    expect(focused).toBe('node-01');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'node-01' }).waitFor();
  });

  it('fits a phone-width screen and logged no console errors', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${url}/machines`);
    await row('node-01').waitFor();
    const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBe(0);
    await shot('machines-phone');
    expect(consoleErrors).toEqual([]);
  });
});
