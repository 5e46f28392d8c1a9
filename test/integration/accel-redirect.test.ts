import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';

type TC = Awaited<ReturnType<typeof freshController>>;

// With accelRedirect set, the controller authorises and traces every artifact download and
// names the file to a front nginx; files outside the data directory it still streams itself.
describe.each(backends)('artifacts through a front nginx (X-Accel-Redirect) on $name', (backend) => {
  let t: TC;
  let inside = true;
  const outside = mkdtempSync(join(tmpdir(), 'plinth-outside-'));
  const kernel = randomBytes(200_000);
  writeFileSync(join(outside, 'vmlinuz'), kernel);
  writeFileSync(join(outside, 'initrd.img'), randomBytes(1000));
  beforeAll(async () => {
    let dataDir = '';
    t = await freshController(backend, { accelRedirect: '/_plinth-data', publicUrl: 'http://10.0.2.2:7708' }, {
      installer: () => (inside ? { kernel: join(dataDir, 'boot', 'installer', 'vmlinuz'), initrd: join(dataDir, 'boot', 'installer', 'initrd.img') } : { kernel: join(outside, 'vmlinuz'), initrd: join(outside, 'initrd.img') }),
    });
    dataDir = t.db.dataDir;
    mkdirSync(join(dataDir, 'boot', 'installer'), { recursive: true });
    writeFileSync(join(dataDir, 'boot', 'installer', 'vmlinuz'), kernel);
    writeFileSync(join(dataDir, 'boot', 'installer', 'initrd.img'), randomBytes(1000));
  });
  afterAll(async () => t?.close());

  const bootAttempt = async (mac: string) => {
    const r = await t.controller.app.inject({ method: 'GET', url: `/boot/machine.ipxe?mac=${mac}&arch=x86_64&platform=pcbios`, headers: { host: '10.0.2.2:7708', 'user-agent': 'iPXE/1.21.1+' } });
    const attempt = /vmlinuz\?attempt=([0-9a-f-]+)/.exec(r.body)?.[1];
    expect(attempt, r.body).toBeDefined();
    return attempt!;
  };

  it('answers a kernel download with an empty X-Accel-Redirect into the data directory, and traces it', async () => {
    const attempt = await bootAttempt('52:54:00:ac:00:01');
    const r = await t.controller.app.inject({ method: 'GET', url: `/boot/installer/vmlinuz?attempt=${attempt}`, headers: { range: 'bytes=0-99' } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['x-accel-redirect']).toBe('/_plinth-data/boot/installer/vmlinuz');
    expect(r.rawPayload.length).toBe(0);
    const m = (await t.api('GET', '/api/v1/machines?q=52:54:00:ac:00:01')).json().items[0];
    const trace = (await t.api('GET', `/api/v1/machines/${m.id}/trace`)).json();
    expect(trace.attempts[0].id).toBe(attempt);
    expect(trace.attempts[0].stages.at(-1)).toMatchObject({ stage: 'kernel', detail: { range: 'bytes=0-99' } });
  });

  it('streams a file outside the data directory itself, with Range', async () => {
    inside = false;
    try {
      const attempt = await bootAttempt('52:54:00:ac:00:02');
      const r = await t.controller.app.inject({ method: 'GET', url: `/boot/installer/vmlinuz?attempt=${attempt}`, headers: { range: 'bytes=100-199' } });
      expect(r.statusCode).toBe(206);
      expect(r.headers['x-accel-redirect']).toBeUndefined();
      expect(Buffer.compare(r.rawPayload, kernel.subarray(100, 200))).toBe(0);
    } finally {
      inside = true;
    }
  });
});
