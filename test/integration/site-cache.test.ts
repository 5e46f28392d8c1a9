import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import { ensureBuilt, freePort } from '../support/plinth-process.js';
import { countingRelay as relay, startCacheManager as startManager } from '../support/site-cache.js';
import { cacheFileUrl } from '../../src/protocol/site-cache.js';
import { inProcessCli } from '../support/cli.js';
import { writeImage } from '../../src/agent/steps/write-image.js';
import { LoopDevices, readDevice } from '../../src/agent/steps/test-fixtures.js';

type TC = Awaited<ReturnType<typeof freshController>>;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const MiB = 2 ** 20;

/** Polls until `check` holds (a condition, never a fixed wait); fails with the last value after `limitMs`. */
async function until<T>(what: string, read: () => Promise<T>, check: (v: T) => boolean, limitMs = 120_000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await read();
    if (check(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Site caches end to end with real processes: a controller listening on a socket (both
 * databases) behind a byte-counting relay, a `plinth manager --cache-dir` process, and plain
 * HTTP clients as the site's machines (boot script, agent hello, image download).
 */
describe.each(backends)('site caches on $name', (backend) => {
  let t: TC;
  let wan: Awaited<ReturnType<typeof relay>>;
  let manager: Awaited<ReturnType<typeof startManager>>;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-sitecache-'));
  const cacheDir = join(dir, 'cache');
  writeFileSync(join(dir, 'vmlinuz'), randomBytes(64 * 1024));
  writeFileSync(join(dir, 'initrd.img'), randomBytes(256 * 1024));
  const images: Record<string, Buffer> = { a: randomBytes(3 * MiB), b: randomBytes(3 * MiB), c: randomBytes(3 * MiB), d: randomBytes(3 * MiB) };
  let controllerUrl = '';

  beforeAll(async () => {
    ensureBuilt();
    t = await freshController(backend, {}, { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
    controllerUrl = await t.controller.listen();
    wan = await relay(new URL(controllerUrl));
    for (const [name, bytes] of Object.entries(images)) {
      const up = await t.inject('POST', `/api/v1/images?name=img-${name}&sha256=${sha(bytes)}`, { token: t.adminToken, body: bytes, headers: { 'content-type': 'application/octet-stream' } });
      expect(up.statusCode, up.body).toBe(201);
    }
    expect((await t.api('POST', '/api/v1/appliances', { name: 'dc2-bmc', type: 'manual', address: 'rack 2, row 4', site: 'dc2' })).statusCode).toBe(201);
    // 8 MiB: two of the three 3 MiB images fit, the third evicts one.
    manager = await startManager({ controller: wan.url, token: t.adminToken, site: 'dc2', dir: cacheDir, size: '8M', port: await freePort() });
    await until('the manager reports its cache', async () => (await t.api('GET', '/api/v1/managers')).json().items, (items: any[]) => items.some((m) => m.site === 'dc2' && m.cache?.inUse));
    // A bound on failure only: ensureBuilt may build dist/ first, and a loaded machine starts processes slowly.
  }, 600_000);
  afterAll(async () => {
    await manager?.stop();
    await wan?.close();
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const appliance = async () => (await t.api('GET', '/api/v1/appliances/dc2-bmc')).json().id as string;
  const boot = async (mac: string) => (await t.inject('GET', `/boot/machine.ipxe?mac=${mac}`)).body;
  const tokenIn = (script: string) => /plinth\.token=(\S+)/.exec(script)![1]!;

  /** A machine of site dc2, inspected (available), then deploying `image`: its run ticket and the hello's parameters. */
  async function deploying(name: string, mac: string, image: string) {
    const c = await t.api('POST', '/api/v1/machines', { name, identity: { macs: [mac] }, provider: { applianceId: await appliance(), ref: name } });
    expect(c.statusCode, c.body).toBe(201);
    expect((await t.api('POST', `/api/v1/machines/${name}/actions/inspect`, {})).statusCode).toBe(200);
    let token = tokenIn(await boot(mac));
    expect((await t.inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    expect((await t.inject('POST', '/agent/v1/facts', { token, body: makeFacts({ serial: `SER-${name}`, macs: [mac], disks: [['vda', 8 * 2 ** 30]] }) })).statusCode).toBe(200);
    const d = await t.api('POST', `/api/v1/machines/${name}/actions/deploy`, { image });
    expect(d.statusCode, d.body).toBe(200);
    const script = await boot(mac);
    token = tokenIn(script);
    const hello = await t.inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } });
    expect(hello.statusCode, hello.body).toBe(200);
    return { script, token, runId: d.json().run.id as string, params: hello.json().run.params };
  }

  const cacheFigures = async () => {
    const text = await (await fetch(`${manager.url}/metrics`)).text();
    const read = (n: string) => Number(new RegExp(`^plinth_site_cache_${n} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return { fetches: read('fetches_total'), hits: read('hits_total'), misses: read('misses_total'), used: read('used_bytes'), limit: read('limit_bytes'), rejected: read('rejected_total'), evictions: read('evictions_total'), refused: read('refused_total') };
  };
  const filesOnDisk = () => readdirSync(join(cacheDir, 'files')).map((n) => ({ n, size: statSync(join(cacheDir, 'files', n)).size }));

  let web1: Awaited<ReturnType<typeof deploying>>;
  let web2: Awaited<ReturnType<typeof deploying>>;
  /** The controller's egress before the first deploy: the cache may fetch a deploy's files as soon as it is prepared. */
  let beforeDeploys = 0;
  const INSTALLER_BYTES = (64 + 256) * 1024;

  it('points the site\'s machines at the cache: the installer (the controller as fallback) and the image, by signed URLs', async () => {
    beforeDeploys = wan.sent;
    web1 = await deploying('web-1', '52:54:00:5c:00:01', 'img-a');
    web2 = await deploying('web-2', '52:54:00:5c:00:02', 'img-a');
    const kernelSha = sha(readFileSync(join(dir, 'vmlinuz')));
    expect(web1.script).toContain(`kernel ${manager.url}/files/${kernelSha}/vmlinuz?run=${web1.runId}&expires=`);
    expect(web1.script).toMatch(/ \|\| kernel http:\/\/[^ ]+\/boot\/installer\/vmlinuz\?attempt=/);
    expect(web1.script).toMatch(new RegExp(`initrd --name initrd.img ${manager.url}/files/[0-9a-f]{64}/initrd.img\\?run=${web1.runId}&expires=\\d+&sig=[\\w-]+ \\|\\| initrd --name initrd.img http://`));
    expect(web1.params.image).toMatchObject({ sha256: sha(images.a!), sizeBytes: images.a!.length });
    expect(web1.params.image.url).toMatch(new RegExp(`^${manager.url}/files/${sha(images.a!)}/img-a\\?run=${web1.runId}&expires=\\d+&sig=[\\w-]+$`));
    // The installer's kernel through the cache is the controller's file.
    const k = await fetch(/kernel (\S+)/.exec(web1.script)![1]!);
    expect(k.status).toBe(200);
    expect(sha(Buffer.from(await k.arrayBuffer()))).toBe(kernelSha);
  });

  it('two machines fetching the same image at once: the controller sends its bytes once', async () => {
    const [one, two] = await Promise.all([fetch(web1.params.image.url), fetch(web2.params.image.url)]);
    expect([one.status, two.status]).toEqual([200, 200]);
    expect(one.headers.get('etag')).toBe(`"${sha(images.a!)}"`);
    const [b1, b2] = [Buffer.from(await one.arrayBuffer()), Buffer.from(await two.arrayBuffer())];
    expect(sha(b1)).toBe(sha(images.a!));
    expect(sha(b2)).toBe(sha(images.a!));
    // Since the deploys were prepared: the image once (fetched for the first request, or ahead of
    // it from the report's prefetch list), the installer's files, HTTP headers and the manager's
    // small JSON calls (reports, run checks, download records). Twice the image would be 3 MiB more.
    const egress = wan.sent - beforeDeploys;
    expect(egress).toBeGreaterThanOrEqual(images.a!.length);
    expect(egress).toBeLessThan(images.a!.length + INSTALLER_BYTES + 256 * 1024);
    const after = await cacheFigures();
    // A third download is a hit and costs the controller nothing but a run check at most.
    const again = wan.sent;
    const three = await fetch(web1.params.image.url);
    expect(sha(Buffer.from(await three.arrayBuffer()))).toBe(sha(images.a!));
    expect(wan.sent - again).toBeLessThan(16 * 1024);
    expect((await cacheFigures()).hits - after.hits).toBe(1);
    // The cache tells the controller what it served: web-1's boot trace shows its installer and image downloads.
    const stages = await until(
      "web-1's trace shows the cache's downloads",
      async () => (await t.api('GET', '/api/v1/machines/web-1/trace?attempts=1')).json().attempts[0].stages as { stage: string; detail: any }[],
      (st) => st.filter((x) => x.stage === 'image').length >= 2,
    );
    expect(stages.find((x) => x.stage === 'kernel')?.detail).toEqual({ site: 'dc2', cache: expect.stringMatching(/^(hit|miss)$/), status: 200 });
    const image = stages.filter((x) => x.stage === 'image').map((x) => x.detail);
    expect(image.every((d) => d.site === 'dc2' && d.status === 200)).toBe(true);
    expect(image.at(-1)!.cache).toBe('hit');
  });

  it('serves byte ranges as the agent resumes: 206 from an offset, If-Range, 416 past the end', async () => {
    const url = web1.params.image.url;
    const etag = `"${sha(images.a!)}"`;
    const part = await fetch(url, { headers: { range: 'bytes=1048576-' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1048576-${images.a!.length - 1}/${images.a!.length}`);
    expect(Buffer.compare(Buffer.from(await part.arrayBuffer()), images.a!.subarray(MiB))).toBe(0);
    const mid = await fetch(url, { headers: { range: 'bytes=10-19', 'if-range': etag } });
    expect(mid.status).toBe(206);
    expect(Buffer.compare(Buffer.from(await mid.arrayBuffer()), images.a!.subarray(10, 20))).toBe(0);
    const tail = await fetch(url, { headers: { range: 'bytes=-100' } });
    expect(Buffer.compare(Buffer.from(await tail.arrayBuffer()), images.a!.subarray(-100))).toBe(0);
    const changed = await fetch(url, { headers: { range: 'bytes=10-', 'if-range': '"another"' } });
    expect(changed.status).toBe(200);
    expect(Number(changed.headers.get('content-length'))).toBe(images.a!.length);
    await changed.arrayBuffer();
    const past = await fetch(url, { headers: { range: `bytes=${images.a!.length}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${images.a!.length}`);
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(images.a!.length));
  });

  it("the agent's own image writer, its connection to the cache cut twice, resumes with Range and writes the verified image", async () => {
    // The site's network between machine and cache, cut twice mid-image.
    const lan = await relay(new URL(manager.url));
    const loops = new LoopDevices();
    try {
      const disk = await loops.attach(4 * MiB);
      const url = new URL(web1.params.image.url);
      lan.cutAfter(url.pathname, MiB + 4321, MiB);
      const write = writeImage({
        url: `${lan.url}${url.pathname}${url.search}`,
        sha256: web1.params.image.sha256,
        sizeBytes: web1.params.image.sizeBytes,
        device: disk.device,
        log: () => undefined,
        backoffMs: [10],
        idleTimeoutMs: 30_000,
      });
      const result = await write;
      expect(result).toMatchObject({ bytes: images.a!.length, sha256: sha(images.a!), attempts: 3, transport: 'http' });
      expect(result.resumedAt).toHaveLength(2);
      expect(result.resumedAt[0]).toBeGreaterThan(0);
      expect((await readDevice(loops, disk.device, 0, images.a!.length)).equals(images.a!)).toBe(true);
      const ranges = await until(
        "the resumed downloads in web-1's trace",
        async () => ((await t.api('GET', '/api/v1/machines/web-1/trace?attempts=1')).json().attempts[0].stages as { stage: string; detail: any }[]).filter((x) => x.stage === 'image' && x.detail.range),
        (st) => result.resumedAt.every((at) => st.some((x) => x.detail.range === `bytes=${at}-` && x.detail.status === 206 && x.detail.cache === 'hit')),
      );
      expect(ranges.length).toBeGreaterThanOrEqual(2);
    } finally {
      await loops.detachAll();
      await lan.close();
    }
  });

  it('refuses callers the controller would refuse: no or a forged signature, another file, an ended run', async () => {
    const url = new URL(web1.params.image.url);
    const refused = async (u: string, why: RegExp, status = 403) => {
      const r = await fetch(u);
      expect(r.status, u).toBe(status);
      expect((await r.text()).trim()).toMatch(why);
    };
    await refused(`${url.origin}${url.pathname}`, /^run, expires and sig are required$/);
    const forged = new URL(url);
    forged.searchParams.set('sig', `${url.searchParams.get('sig')!.slice(0, -2)}AA`);
    await refused(forged.href, /^sig: not this site's signature/);
    const otherRun = new URL(url);
    otherRun.searchParams.set('run', web2.runId);
    await refused(otherRun.href, /^sig: /);
    // The signature names one file: the same query on another sha256 opens nothing.
    await refused(`${url.origin}/files/${sha(images.b!)}/img-a${url.search}`, /^sig: /);
    const later = new URL(url);
    later.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 3600));
    await refused(later.href, /^sig: /);
    await refused(`${url.origin}/files/../../etc/passwd`, /^not a cache file URL/, 404);

    // web-2's deploy is aborted: its run ends, and within the cache's run-check time its URL stops working.
    const abort = await t.api('POST', '/api/v1/machines/web-2/actions/abort', {});
    expect(abort.statusCode, abort.body).toBe(200);
    expect((await t.inject('GET', '/agent/v1/images/img-a', { token: web2.token })).statusCode).toBe(401);
    const status = await until('web-2\'s cache URL refused', async () => (await fetch(web2.params.image.url).then(async (r) => (await r.arrayBuffer(), r.status))), (s) => s === 403);
    expect(status).toBe(403);
    await refused(web2.params.image.url, /^run \S+ has ended, or is not on a machine of this site$/);
    expect((await cacheFigures()).refused).toBeGreaterThanOrEqual(6);
  });

  let inspectRun = '';
  it("fetches a deploy's image before its machine asks: the controller's prefetch list in the answer to the cache's report", async () => {
    const w4 = await deploying('web-4', '52:54:00:5c:00:04', 'img-d');
    await until('img-d in the cache with no machine asking', async () => filesOnDisk().map((f) => f.n), (names) => names.includes(sha(images.d!)), 90_000);
    const before = wan.sent;
    const r = await fetch(w4.params.image.url);
    expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(images.d!));
    expect(wan.sent - before).toBeLessThan(16 * 1024);
    // The deploys end; what follows signs its own URLs under an inspection run, which wants only the installer.
    for (const m of ['web-1', 'web-4']) expect((await t.api('POST', `/api/v1/machines/${m}/actions/abort`, {})).statusCode).toBe(200);
    const c = await t.api('POST', '/api/v1/machines', { name: 'web-5', identity: { macs: ['52:54:00:5c:00:05'] }, provider: { applianceId: await appliance(), ref: 'web-5' } });
    expect(c.statusCode, c.body).toBe(201);
    const i = await t.api('POST', '/api/v1/machines/web-5/actions/inspect', {});
    expect(i.statusCode, i.body).toBe(200);
    inspectRun = i.json().run.id;
  });

  /** A URL for an image under web-5's inspection run, signed with the site's key as the controller would. */
  async function signed(image: string) {
    const answer = await t.api('POST', '/api/v1/managers/dc2/cache', { url: manager.url, limitBytes: 1, usedBytes: 0, files: 0, hits: 0, misses: 0, fetches: 0, fetchedBytes: 0, servedBytes: 0, evictions: 0, rejected: 0, refused: 0 });
    expect(answer.statusCode, answer.body).toBe(200);
    const key = Buffer.from(answer.json().key, 'base64url');
    return cacheFileUrl(manager.url, key, { sha256: sha(images[image]!), name: `img-${image}`, runId: inspectRun, expires: Math.floor(Date.now() / 1000) + 600 });
  }

  it('never serves a corrupted or partial file: the controller\'s bytes are checked against the sha256 before they are kept', async () => {
    // The controller's copy of img-b is damaged on disk (its recorded sha256 stays).
    const stored = (await t.controller.services.images.get('img-b'));
    const path = t.controller.services.images.path(stored);
    const damaged = Buffer.from(images.b!);
    damaged[12345] = damaged[12345]! ^ 0xff;
    writeFileSync(path, damaged);
    const url = await signed('b');
    const before = (await cacheFigures()).rejected;
    const r = await fetch(url);
    expect(r.status).toBe(502);
    expect((await r.text()).trim()).toMatch(new RegExp(`^the controller sent bytes whose sha256 is ${sha(damaged)}, not ${sha(images.b!)}; nothing was kept$`));
    expect((await cacheFigures()).rejected).toBe(before + 1);
    expect(filesOnDisk().map((f) => f.n)).not.toContain(sha(images.b!));
    expect(readdirSync(join(cacheDir, 'tmp'))).toEqual([]);

    // Repaired at the controller, but the WAN drops the transfer half-way: nothing is kept, the next request fetches again.
    writeFileSync(path, images.b!);
    wan.cutAfter(`/files/${sha(images.b!)}`, MiB);
    const cut = await fetch(url);
    expect(cut.status).toBe(503);
    expect((await cut.text()).trim()).toMatch(/^fetching sha256 [0-9a-f]{64} from the controller failed at byte \d+: /);
    expect(filesOnDisk().map((f) => f.n)).not.toContain(sha(images.b!));
    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(sha(Buffer.from(await ok.arrayBuffer()))).toBe(sha(images.b!));
    expect(filesOnDisk().map((f) => f.n)).toContain(sha(images.b!));
  });

  it('evicts the least recently used files to stay under its size', async () => {
    // Held: img-a and img-d (no longer wanted), img-b, the installer's files. img-c needs room: the least recently used go.
    const url = await signed('c');
    const evictions = (await cacheFigures()).evictions;
    const r = await fetch(url);
    expect(r.status).toBe(200);
    expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(images.c!));
    const files = filesOnDisk();
    expect(files.reduce((n, f) => n + f.size, 0)).toBeLessThanOrEqual(8 * MiB);
    expect(files.map((f) => f.n)).toEqual(expect.arrayContaining([sha(images.b!), sha(images.c!)]));
    expect(files.map((f) => f.n)).not.toContain(sha(images.a!));
    expect(files.map((f) => f.n)).not.toContain(sha(images.d!));
    const f = await cacheFigures();
    expect(f.evictions).toBeGreaterThan(evictions);
    expect(f.used).toBeLessThanOrEqual(f.limit);
    expect(f.used).toBe(files.reduce((n, x) => n + x.size, 0));
  });

  it('lists the cache with its figures; when the manager goes, machines are sent to the controller again', async () => {
    const items = (await t.api('GET', '/api/v1/managers')).json().items;
    const dc2 = items.find((m: any) => m.site === 'dc2');
    expect(dc2.cache).toMatchObject({ url: manager.url, inUse: true });
    await until('a report with figures', async () => (await t.api('GET', '/api/v1/managers')).json().items.find((m: any) => m.site === 'dc2').cache.report, (r: any) => r && r.fetches >= 3 && r.limitBytes === 8 * MiB);
    expect(await manager.stop()).toBe(0);
    // The controller passes over a cache not heard from for a minute: its clock moves on, the test's does not wait.
    await t.controller.services.store.db.updateTable('managers').set({ cache_seen: new Date(Date.now() - 61_000).toISOString() }).where('site', '=', 'dc2').execute();
    const w3 = await deploying('web-3', '52:54:00:5c:00:03', 'img-a');
    expect(w3.params.image.url).toBe('/agent/v1/images/img-a');
    expect(w3.script).not.toContain(manager.url);
    expect(w3.script).toContain('/boot/installer/vmlinuz?attempt=');
    expect((await t.api('GET', '/api/v1/managers')).json().items.find((m: any) => m.site === 'dc2').cache.inUse).toBe(false);
  });
});

describe('plinth manager: site cache flags', () => {
  const cli = inProcessCli({ PLINTH_TOKEN: 'plinth_x' });
  it('refuses bad flags with one line and exit 2, before reaching anything', async () => {
    const cases: [string[], string][] = [
      [['--cache-dir', '/nonexistent/c', '--cache-size', 'lots', '--listen', '127.0.0.1:1'], "--cache-size: 'lots' is not a size (20G, 500M)"],
      [['--cache-dir', '/nonexistent/c'], '--advertise-url is required when --listen is a wildcard address: machines must be told one address'],
      [['--cache-dir', '/nonexistent/c', '--listen', 'nowhere'], "--listen: 'nowhere' is not host:port"],
      [['--cache-dir', '/nonexistent/c', '--listen', '127.0.0.1:1', '--advertise-url', 'ftp://x'], "--advertise-url: 'ftp://x' is not http(s)://host[:port]"],
      [['--advertise-url', 'http://10.2.0.5:7709'], '--advertise-url needs --cache-dir'],
    ];
    for (const [flags, message] of cases) {
      const r = await cli('manager', '--controller', 'http://127.0.0.1:1', '--site', 'dc2', ...flags);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(message);
    }
  });
});
