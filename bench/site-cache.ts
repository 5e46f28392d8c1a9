import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqliteBackend } from '../test/support/backends.js';
import { startController } from '../test/support/controller.js';
import { ensureBuilt, freePort } from '../test/support/plinth-process.js';
import { countingRelay, startCacheManager } from '../test/support/site-cache.js';
import { cacheFileUrl } from '../src/protocol/site-cache.js';
import { loadAverage, machineInfo, record, table, today } from './support.js';

const MiB = 2 ** 20;

/**
 * A site cache under many machines at once, counted on the wire: a controller (SQLite) behind
 * a TCP relay that counts the bytes it sends (its WAN egress), a `plinth manager --cache-dir`
 * process, and N HTTP clients on this host as the site's machines downloading one image by
 * its signed URL at the same moment, each hashing what it got. Cold: the image is not in the
 * cache (every client waits for the one fetch); warm: the same again, from the cache.
 *
 * `npm run bench site-cache [--quick]`: a 256 MiB image, 10 and 50 clients; --quick: 16 MiB, 10 and 50.
 */
const QUICK = process.argv.includes('--quick');
const IMAGE_BYTES = (QUICK ? 16 : 256) * MiB;
const CLIENTS = [10, 50];

interface Row {
  clients: number;
  phase: 'cold' | 'warm';
  egressMiB: number;
  egressPerImage: number;
  seconds: number;
  servedMiB: number;
  verified: boolean;
}

export async function run(): Promise<string> {
  ensureBuilt();
  const db = await sqliteBackend.create();
  const cacheDir = mkdtempSync(join(tmpdir(), 'plinth-bench-cache-'));
  const t = await startController(db);
  const controllerUrl = await t.controller.listen();
  const wan = await countingRelay(new URL(controllerUrl));
  const manager = await startCacheManager({ controller: wan.url, token: t.adminToken, site: 'dc2', dir: cacheDir, size: `${(IMAGE_BYTES * CLIENTS.length) / MiB + 64}M`, port: await freePort() });
  const rows: Row[] = [];
  const loads: string[] = [loadAverage()];
  try {
    const appliance = await t.api('POST', '/api/v1/appliances', { name: 'dc2-bmc', type: 'manual', address: 'dc2', site: 'dc2' });
    await t.api('POST', '/api/v1/machines', { name: 'm1', identity: { macs: ['52:54:00:be:00:01'] }, provider: { applianceId: appliance.json().id, ref: 'm1' } });
    const runId = (await t.api('POST', '/api/v1/machines/m1/actions/inspect', {})).json().run.id as string;
    for (;;) {
      const items = (await t.api('GET', '/api/v1/managers')).json().items as { site: string; cache: { inUse: boolean } | null }[];
      if (items.some((m) => m.site === 'dc2' && m.cache?.inUse)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const key = Buffer.from(
      (await t.api('POST', '/api/v1/managers/dc2/cache', { url: manager.url, limitBytes: 1, usedBytes: 0, files: 0, hits: 0, misses: 0, fetches: 0, fetchedBytes: 0, servedBytes: 0, evictions: 0, rejected: 0, refused: 0 })).json().key,
      'base64url',
    );
    for (const n of CLIENTS) {
      const image = randomBytes(IMAGE_BYTES);
      const sha256 = createHash('sha256').update(image).digest('hex');
      const up = await t.inject('POST', `/api/v1/images?name=bench-${n}&sha256=${sha256}`, { token: t.adminToken, body: image, headers: { 'content-type': 'application/octet-stream' } });
      if (up.statusCode !== 201) throw new Error(`upload: ${up.body}`);
      const url = cacheFileUrl(manager.url, key, { sha256, name: `bench-${n}`, runId, expires: Math.floor(Date.now() / 1000) + 3600 });
      for (const phase of ['cold', 'warm'] as const) {
        const sent = wan.sent;
        const served = await servedBytes(manager.url);
        const t0 = process.hrtime.bigint();
        const got = await Promise.all(
          Array.from({ length: n }, async () => {
            const res = await fetch(url);
            const h = createHash('sha256');
            for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) h.update(chunk);
            return res.status === 200 && h.digest('hex') === sha256;
          }),
        );
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const egress = wan.sent - sent;
        rows.push({
          clients: n,
          phase,
          egressMiB: Math.round((egress / MiB) * 10) / 10,
          egressPerImage: Math.round((egress / IMAGE_BYTES) * 1000) / 1000,
          seconds: Math.round(seconds * 10) / 10,
          servedMiB: Math.round(((await servedBytes(manager.url)) - served) / MiB),
          verified: got.every(Boolean),
        });
        loads.push(loadAverage());
      }
    }
  } finally {
    await manager.stop();
    await wan.close();
    await t.close();
    await db.drop();
    rmSync(cacheDir, { recursive: true, force: true });
  }
  const md = `# Site cache, ${today()}${QUICK ? ' (quick)' : ''}

${machineInfo()}; load averages (1 / 5 / 15 min) during the run: ${loads.join(' → ')}.

A controller (SQLite) behind a TCP relay that counts the bytes the controller sends (its WAN
egress, on the wire), a \`plinth manager --cache-dir\` process, and N HTTP clients on the same
host downloading one ${IMAGE_BYTES / MiB} MiB image (random bytes) by its signed URL at the same
moment, each hashing what it received (\`verified\`: every client got the image's sha256).
Cold: the image is not in the cache, every client waits for the one fetch and verification;
warm: the same clients again. Without a cache each machine would fetch the image from the
controller: N times its size.

${table(rows as unknown as Record<string, unknown>[], ['clients', 'phase', 'egressMiB', 'egressPerImage', 'seconds', 'servedMiB', 'verified'])}
`;
  return record(QUICK ? 'site-cache-quick' : 'site-cache', md, { imageBytes: IMAGE_BYTES, rows, loads });
}

async function servedBytes(cacheUrl: string): Promise<number> {
  const text = await (await fetch(`${cacheUrl}/metrics`)).text();
  return Number(/^plinth_site_cache_served_bytes_total (\S+)$/m.exec(text)?.[1] ?? NaN);
}
