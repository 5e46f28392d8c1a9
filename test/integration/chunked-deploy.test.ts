import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countingProxy, LoopDevices, MiB, readDevice } from '../../src/agent/steps/test-fixtures.js';
import { writeImage, type WriteImageResult } from '../../src/agent/steps/write-image.js';
import { imageSource } from '../../src/agent/steps/runner.js';
import { ChunkIndexSchema, CHUNK_BYTES, type ChunkIndex } from '../../src/protocol/chunk-index.js';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import Value from 'typebox/value';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * Image deploys with the chunk index, against a real controller on each database: the agent's
 * writer on a loop device fetches the image through a proxy that counts what the controller
 * sent. A fresh deploy moves only the non-zero chunks; a redeploy of a new version of the
 * image the machine runs moves only what changed.
 */
describe.each(backends)('chunked image deploys on $name', (backend) => {
  let t: Awaited<ReturnType<typeof freshController>>;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  const loops = new LoopDevices();
  const dir = mkdtempSync(join(tmpdir(), 'plinth-chunks-'));
  writeFileSync(join(dir, 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'initrd.img'), 'initrd');
  const IMAGE_BYTES = 64 * MiB;
  /** Random data in four places, zeros elsewhere: 22 MiB of 64 are not zero. */
  const DATA: [number, number][] = [
    [0, 8 * MiB],
    [20 * MiB, 30 * MiB],
    [40 * MiB + 4096, 43 * MiB],
    [63 * MiB, 64 * MiB],
  ];
  const v1 = Buffer.alloc(IMAGE_BYTES);
  for (const [start, end] of DATA) randomBytes(end - start).copy(v1, start);
  const nonZeroChunkBytes = (() => {
    let n = 0;
    for (let at = 0; at < IMAGE_BYTES; at += CHUNK_BYTES) if (v1.subarray(at, at + CHUNK_BYTES).some((b) => b !== 0)) n += CHUNK_BYTES;
    return n;
  })();

  beforeAll(async () => {
    t = await freshController(backend, { publicUrl: 'http://10.0.2.2:7708' }, { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
    proxy = await countingProxy(await t.controller.listen());
  });
  afterAll(async () => {
    await proxy?.close();
    await t?.close();
    await loops.detachAll();
  });

  const inject = (method: string, url: string, opts: Parameters<typeof t.inject>[2] = {}) => t.inject(method, url, { ...opts, headers: { host: '10.0.2.2:7708', ...opts.headers } });
  const MAC = '52:54:00:c4:00:01';
  const bootToken = async () => /plinth\.token=(\S+)/.exec((await inject('GET', `/boot/machine.ipxe?mac=${MAC}`)).body)![1]!;
  let disk: { device: string; file: string };

  /** The run's agent: hello, then the image written as the agent's write-image step writes it, through the proxy. */
  async function agentWrites(): Promise<{ result: WriteImageResult; sent: number; params: any; token: string; callback: string }> {
    const token = await bootToken();
    const hello = await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } });
    expect(hello.statusCode, hello.body).toBe(200);
    const params = hello.json().run.params;
    const image = params.image;
    const before = proxy.sent();
    const result = await writeImage({
      url: imageSource(image.url, proxy.url, token).url,
      token,
      sha256: image.sha256,
      sizeBytes: image.sizeBytes,
      device: disk.device,
      ...(image.index ? { index: { ...imageSource(image.index.url, proxy.url, token), sha256: image.index.sha256 }, differential: image.differential === true } : {}),
      log: () => undefined,
      backoffMs: [5],
      sleep: async () => undefined,
    });
    return { result, sent: proxy.sent() - before, params, token, callback: /plcb_[A-Za-z0-9_-]+/.exec(params.seed.userData)![0] };
  }

  async function finish(token: string, callback: string) {
    for (const step of ['select-disk', 'write-image', 'grow-root', 'configure']) {
      for (const status of ['running', 'succeeded']) expect((await inject('POST', `/agent/v1/steps/${step}`, { token, body: { status } })).statusCode).toBe(200);
    }
    expect((await inject('POST', '/agent/v1/boot-local', { token, body: {} })).statusCode).toBe(200);
    const r = await inject('POST', '/agent/v1/installed', { token: callback, body: { event: 'first-boot', source: 'cloud-init' } });
    expect(r.statusCode, r.body).toBe(200);
  }

  it('keeps a chunk index next to an uploaded image and serves it to the run that deploys it', async () => {
    const up = await inject('POST', `/api/v1/images?name=web&sha256=${sha(v1)}`, { token: t.adminToken, body: v1, headers: { 'content-type': 'application/octet-stream' } });
    expect(up.statusCode, up.body).toBe(201);
    const token = await bootToken();
    expect((await inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    const facts = await inject('POST', '/agent/v1/facts', { token, body: makeFacts({ serial: 'SER-chunks', macs: [MAC], disks: [['vda', 8 * 2 ** 30]] }) });
    expect(facts.statusCode, facts.body).toBe(200);
    const m = (await t.api('GET', `/api/v1/machines?q=${MAC}`)).json().items[0];
    expect((await t.api('PATCH', `/api/v1/machines/${m.id}`, { name: 'web-1' })).statusCode).toBe(200);
    const deploy = await t.api('POST', '/api/v1/machines/web-1/actions/deploy', { image: 'web' });
    expect(deploy.statusCode, deploy.body).toBe(200);
    const run = deploy.json().run.id;
    const params = (await t.api('GET', `/api/v1/runs/${run}`)).json().params;
    expect(params).toMatchObject({ image: 'web', imageSha256: sha(v1), differential: false });

    const deployToken = await bootToken();
    const hello = (await inject('POST', '/agent/v1/hello', { token: deployToken, body: { agentVersion: 't' } })).json();
    expect(hello.run.params.image).toEqual({ url: '/agent/v1/images/web', sha256: sha(v1), sizeBytes: v1.length, format: 'raw', index: { url: '/agent/v1/images/web/chunks', sha256: params.imageIndexSha256 } });
    const served = await inject('GET', '/agent/v1/images/web/chunks', { token: deployToken });
    expect(served.statusCode).toBe(200);
    expect(sha(served.rawPayload)).toBe(params.imageIndexSha256);
    const index = JSON.parse(served.body) as ChunkIndex;
    expect(Value.Check(ChunkIndexSchema, index)).toBe(true);
    expect(index).toMatchObject({ imageSha256: sha(v1), sizeBytes: v1.length, chunkBytes: CHUNK_BYTES });
    expect(index.chunks.filter((c) => !c.zero).length * CHUNK_BYTES).toBe(nonZeroChunkBytes);
    expect(index.chunks.every((c, i) => c.sha256 === sha(v1.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES)))).toBe(true);
    // The index is a plain file next to the image's, for whoever serves or caches the image.
    const images = (await t.api('GET', '/api/v1/images')).json().items;
    expect(images.map((i: any) => i.name)).toEqual(['web']);
    const stored = t.controller.services.images;
    expect(readFileSync(`${stored.path(await stored.get('web'))}.chunks.json`).equals(served.rawPayload)).toBe(true);
    // Another run's token, or no token, gets nothing.
    expect((await inject('GET', '/agent/v1/images/web/chunks')).statusCode).toBe(401);
    // Back to where it was: the test below deploys it for real.
    expect((await t.api('POST', '/api/v1/machines/web-1/actions/abort', {})).statusCode).toBe(200);
  });

  it('a fresh deploy moves only the non-zero chunks; the disk holds the image', async () => {
    disk = await loops.attach(IMAGE_BYTES + 8 * MiB);
    loops.assertOurs(disk.device);
    writeFileSync(disk.file, Buffer.alloc(IMAGE_BYTES, 0xab), { flag: 'r+' });
    const state = (await t.api('GET', '/api/v1/machines/web-1')).json().state;
    const r = await t.api('POST', `/api/v1/machines/web-1/actions/${state === 'deploy-failed' ? 'retry' : 'deploy'}`, { image: 'web' });
    expect(r.statusCode, r.body).toBe(200);
    const { result, sent, token, callback } = await agentWrites();
    expect(result.chunks).toMatchObject({ fetchedBytes: expect.any(Number), keptBytes: 0, repairedChunks: [], differential: false });
    // What the controller sent: the non-zero chunks (and a few zero chunks between them), the index, headers.
    expect(sent).toBeGreaterThanOrEqual(nonZeroChunkBytes);
    expect(sent).toBeLessThan(nonZeroChunkBytes + 4 * MiB + 512 * 1024);
    expect(sent).toBeLessThan(IMAGE_BYTES / 2);
    expect(sha(await readDevice(loops, disk.device, 0, IMAGE_BYTES))).toBe(sha(v1));
    await finish(token, callback);
    expect((await t.api('GET', '/api/v1/machines/web-1')).json()).toMatchObject({ state: 'deployed', deployment: { image: 'web' } });
    // A differential write needs the controller's index; a tree deploy has no image at all.
    for (const [body, message] of [
      [{ image: 'web', imageUrl: 'http://mirror.example/web.raw', differential: true }, 'differential: applies to images served by the controller (their chunk index), not one fetched from imageUrl'],
      [{ tree: 'web-1.0', differential: false }, 'differential: is for image deploys, not tree'],
    ] as const) {
      const refused = await t.api('POST', '/api/v1/machines/web-1/actions/redeploy', body);
      expect(refused.statusCode, refused.body).toBe(400);
      expect(refused.json().error.message).toBe(message);
    }
  });

  it('a differential redeploy of a new version differing in 5% of its blocks moves less than 15% of the image', async () => {
    // Version 2: 5% of the 4 KiB blocks rewritten (files rewritten), in extents of 512 KiB that start
    // at a random block of a random MiB, no two in the same MiB.
    const v2 = Buffer.from(v1);
    const EXTENT = 512 * 1024;
    const mibs = [...Array(IMAGE_BYTES / MiB).keys()].sort(() => Math.random() - 0.5);
    let changed = 0;
    while (changed < IMAGE_BYTES * 0.05) {
      const at = mibs.pop()! * MiB + Math.floor(Math.random() * (EXTENT / 4096)) * 4096;
      randomBytes(EXTENT).copy(v2, at);
      changed += EXTENT;
    }
    const imagesDir = join(t.config.dataDir, 'images');
    writeFileSync(join(imagesDir, 'web.raw'), v2);
    writeFileSync(join(imagesDir, 'web.raw.sha256'), `${sha(v2)}  web.raw\n`);
    writeFileSync(join(imagesDir, 'web.manifest.json'), '{}');
    const adopted = await t.api('POST', '/api/v1/images/web/adopt', {});
    expect(adopted.statusCode, adopted.body).toBe(200);
    expect(existsSync(join(imagesDir, 'web.raw'))).toBe(false);

    const r = await t.api('POST', '/api/v1/machines/web-1/actions/redeploy', { image: 'web' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().run, r.body).not.toBeNull();
    expect((await t.api('GET', `/api/v1/runs/${r.json().run.id}`)).json().params).toMatchObject({ image: 'web', imageSha256: sha(v2), differential: true });
    const { result, sent, params } = await agentWrites();
    expect(params.image.differential).toBe(true);
    expect(sha(await readDevice(loops, disk.device, 0, IMAGE_BYTES))).toBe(sha(v2));
    expect(result.chunks!.keptBytes).toBeGreaterThan(IMAGE_BYTES / 2);
    // Counted on the wire, index and headers included.
    expect(sent).toBeLessThan(IMAGE_BYTES * 0.15);
    console.log(`differential redeploy (${backend.name}): ${(changed / MiB).toFixed(1)} MiB of ${IMAGE_BYTES / MiB} MiB changed; the controller sent ${sent} bytes (${((sent / IMAGE_BYTES) * 100).toFixed(1)}%); the agent fetched ${result.chunks!.fetchedBytes}, kept ${result.chunks!.keptBytes}`);
  });
});
