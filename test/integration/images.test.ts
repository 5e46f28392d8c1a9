import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { startController, type TestController } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const MiB = 2 ** 20;

/**
 * The image store attacked over the real HTTP API: two uploads racing for one name, a file
 * upload named like a disk image's file, deleting or replacing an image while a deploy
 * downloads it, and the leftovers of an upload cut short by a crash.
 */
describe.each(backends)('image store on $name', (backend) => {
  let db: Awaited<ReturnType<typeof backend.create>>;
  let t: TestController;
  let url = '';
  const dir = mkdtempSync(join(tmpdir(), 'plinth-images-'));
  writeFileSync(join(dir, 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'initrd.img'), 'initrd');
  const opts = { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) };
  const start = async () => {
    t = await startController(db, {}, opts);
    url = await t.controller.listen();
  };
  beforeAll(async () => {
    db = await backend.create();
    await start();
  });
  afterAll(async () => {
    await t?.close();
    await db?.drop();
  });

  const imagesDir = () => join(t.config.dataDir, 'images');
  /** Every file under the image store directory, relative to it. */
  const storeFiles = (): string[] =>
    existsSync(imagesDir()) ? (readdirSync(imagesDir(), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(imagesDir().length + 1)).sort()) : [];
  const get = async (path: string, token?: string) => {
    const r = await fetch(url + path, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: r.status, bytes: Buffer.from(await r.arrayBuffer()) };
  };
  const upload = async (name: string, kind: string, body: Buffer) => {
    const r = await fetch(`${url}/api/v1/images?name=${name}&kind=${kind}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/octet-stream' },
      body,
    });
    return { status: r.status, json: (await r.json()) as any };
  };

  /** An upload whose body the test ends when it chooses. */
  function openUpload(name: string, kind: string) {
    let answer!: Promise<{ status: number; body: any }>;
    const req = request(`${url}/api/v1/images?name=${name}&kind=${kind}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/octet-stream' },
    });
    answer = new Promise((resolve, reject) => {
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString()) }));
      });
      req.on('error', reject);
    });
    return { req, answer };
  }

  async function until(what: string, ok: () => boolean): Promise<void> {
    while (!ok()) await new Promise((r) => setTimeout(r, 20));
    expect(ok(), what).toBe(true);
  }

  /** A machine that booted, was inspected (8 GiB disk) and (unless `body` is null) is now deploying `body`; an image deploy's agent said hello: its run token. */
  async function deploying(name: string, mac: string, body: Record<string, unknown> | null): Promise<string> {
    const tokenIn = async () => /plinth\.token=(\S+)/.exec((await get(`/boot/machine.ipxe?mac=${mac}`)).bytes.toString())![1]!;
    const agent = (path: string, token: string, json: unknown) =>
      t.controller.app.inject({ method: 'POST', url: path, headers: { authorization: `Bearer ${token}` }, payload: json as object });
    const inspect = await tokenIn();
    expect((await agent('/agent/v1/hello', inspect, { agentVersion: 't' })).statusCode).toBe(200);
    expect((await agent('/agent/v1/facts', inspect, makeFacts({ serial: `SER-${name}`, macs: [mac], disks: [['vda', 8 * 2 ** 30]] }))).statusCode).toBe(200);
    const m = (await t.api('GET', `/api/v1/machines?q=${mac}`)).json().items[0];
    expect((await t.api('PATCH', `/api/v1/machines/${m.id}`, { name })).statusCode).toBe(200);
    if (!body) return '';
    const d = await t.api('POST', `/api/v1/machines/${name}/actions/deploy`, body);
    expect(d.statusCode, d.body).toBe(200);
    expect(d.json().machine.state).toBe('deploying');
    if (body.method) return '';
    const token = await tokenIn();
    expect((await agent('/agent/v1/hello', token, { agentVersion: 't' })).statusCode).toBe(200);
    return token;
  }

  const disk = Buffer.alloc(MiB, 0xd1);
  let runToken = '';

  it('answers an upload that is not a byte stream with 415 and a documented code, keeping nothing', async () => {
    const before = storeFiles();
    const upload = (contentType: string, payload: string) =>
      t.controller.app.inject({ method: 'POST', url: '/api/v1/images?name=not-bytes', headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': contentType }, payload });
    // JSON is parsed before the handler sees it: the handler refuses it.
    const json = await upload('application/json', '{"bytes":"AAAA"}');
    expect(json.statusCode, json.body).toBe(415);
    expect(json.json().error).toEqual({ code: 'unsupported_media_type', message: 'send the image as application/octet-stream' });
    // A type no parser accepts is refused before the handler runs, with the same code.
    const text = await upload('text/plain', 'AAAA');
    expect(text.statusCode, text.body).toBe(415);
    expect(text.json().error.code).toBe('unsupported_media_type');
    expect(storeFiles()).toEqual(before);
    expect((await t.api('GET', '/api/v1/images/not-bytes')).statusCode).toBe(404);
  });

  it('two uploads of one name at once: one wins, its bytes stay whole, the loser keeps nothing', async () => {
    const a = Buffer.alloc(MiB, 0xa1);
    const b = Buffer.alloc(MiB, 0xb2);
    const first = openUpload('race.iso', 'iso');
    const second = openUpload('race.iso', 'iso');
    first.req.write(a.subarray(0, 4096));
    second.req.write(b.subarray(0, 4096));
    // Both are past the name check and writing their bytes before either finishes.
    await until('both uploads are writing', () => storeFiles().filter((f) => f.includes('.upload-')).length === 2);
    first.req.end(a.subarray(4096));
    second.req.end(b.subarray(4096));
    const answers = await Promise.all([first.answer, second.answer]);
    expect(answers.map((r) => r.status).sort()).toEqual([201, 409]);
    const winner = answers[0]!.status === 201 ? a : b;
    expect((await t.api('GET', '/api/v1/images/race.iso')).json()).toMatchObject({ sha256: sha(winner), sizeBytes: MiB });
    const served = await get('/boot/files/race.iso');
    expect(served.status).toBe(200);
    expect(sha(served.bytes)).toBe(sha(winner));
    expect(storeFiles().filter((f) => f.includes('.upload-'))).toEqual([]);
    expect(storeFiles()).toHaveLength(1);
  });

  it('a file upload named like a disk image\'s file neither overwrites nor, deleted, removes the disk image\'s bytes', async () => {
    expect((await upload('debian-12', 'disk', disk)).status).toBe(201);
    runToken = await deploying('img-1', '52:54:00:1a:00:01', { image: 'debian-12' });
    const other = Buffer.alloc(4096, 0xf0);
    const up = await upload('debian-12.raw', 'file', other);
    expect(up.status, JSON.stringify(up.json)).toBe(201);
    expect(up.json).not.toHaveProperty('file');
    expect(sha((await get('/boot/files/debian-12.raw')).bytes)).toBe(sha(other));
    const image = await get('/agent/v1/images/debian-12', runToken);
    expect(image.status).toBe(200);
    expect(sha(image.bytes)).toBe(sha(disk));

    expect((await t.api('DELETE', '/api/v1/images/debian-12.raw')).statusCode).toBe(204);
    const after = await get('/agent/v1/images/debian-12', runToken);
    expect(after.status).toBe(200);
    expect(sha(after.bytes)).toBe(sha(disk));
  });

  it('refuses to delete a disk image a running deploy downloads, naming the machine', async () => {
    const before = storeFiles();
    const del = await t.api('DELETE', '/api/v1/images/debian-12');
    expect(del.statusCode).toBe(409);
    expect(del.json().error.message).toContain('img-1');
    expect(del.json().error.details).toMatchObject({ image: 'debian-12', machines: ['img-1'] });
    expect(storeFiles()).toEqual(before);
    const image = await get('/agent/v1/images/debian-12', runToken);
    expect(image.status).toBe(200);
    expect(sha(image.bytes)).toBe(sha(disk));
  });

  it('refuses to replace the bytes of an image a running deploy downloads (adopting a new build), and leaves the build in place', async () => {
    const rebuilt = Buffer.alloc(MiB, 0x77);
    writeFileSync(join(imagesDir(), 'debian-12.raw'), rebuilt);
    writeFileSync(join(imagesDir(), 'debian-12.raw.sha256'), `${sha(rebuilt)}  debian-12.raw\n`);
    writeFileSync(join(imagesDir(), 'debian-12.manifest.json'), JSON.stringify({ firmware: ['bios', 'uefi'] }));
    const adopt = await t.api('POST', '/api/v1/images/debian-12/adopt');
    expect(adopt.statusCode, adopt.body).toBe(409);
    expect(adopt.json().error.details).toMatchObject({ image: 'debian-12', machines: ['img-1'] });
    expect((await t.api('GET', '/api/v1/images/debian-12')).json().sha256).toBe(sha(disk));
    expect(sha((await get('/agent/v1/images/debian-12', runToken)).bytes)).toBe(sha(disk));
    expect(storeFiles()).toEqual(expect.arrayContaining(['debian-12.raw', 'debian-12.raw.sha256', 'debian-12.manifest.json']));

    // Once the deploy is over the new build is adopted, and the old bytes go.
    expect((await t.api('POST', '/api/v1/machines/img-1/actions/abort', { reason: 'test' })).statusCode).toBe(200);
    const oldFile = t.controller.services.images.path(await t.controller.services.images.get('debian-12'));
    const adopted = await t.api('POST', '/api/v1/images/debian-12/adopt');
    expect(adopted.statusCode, adopted.body).toBe(200);
    expect(adopted.json()).toMatchObject({ sha256: sha(rebuilt), firmware: ['bios', 'uefi'] });
    expect(existsSync(oldFile)).toBe(false);
    expect(storeFiles().filter((f) => f.startsWith('debian-12'))).toEqual([]);
  });

  it('refuses to delete an installer kernel a running installer-native deploy boots from', async () => {
    expect((await upload('vmlinuz-12', 'kernel', Buffer.from('a kernel'))).status).toBe(201);
    await deploying('img-2', '52:54:00:1a:00:02', { method: 'preseed', installer: { kernel: 'vmlinuz-12' } });
    const del = await t.api('DELETE', '/api/v1/images/vmlinuz-12');
    expect(del.statusCode, del.body).toBe(409);
    expect(del.json().error.details).toMatchObject({ image: 'vmlinuz-12', machines: ['img-2'] });
    expect((await get('/boot/files/vmlinuz-12')).status).toBe(200);
  });

  it('a deploy prepared from an image deleted before the deploy is recorded is refused, not started without its bytes', async () => {
    expect((await upload('short-lived', 'disk', disk)).status).toBe(201);
    await deploying('img-3', '52:54:00:1a:00:03', null);
    // The delete lands between the deploy's reading of the image and its transaction.
    const images = t.controller.services.images;
    const find = images.find.bind(images);
    images.find = async (key: string) => {
      const found = await find(key);
      images.find = find;
      expect((await t.api('DELETE', '/api/v1/images/short-lived')).statusCode).toBe(204);
      return found;
    };
    const d = await t.api('POST', '/api/v1/machines/img-3/actions/deploy', { image: 'short-lived' });
    images.find = find;
    expect(d.statusCode, d.body).toBe(409);
    expect(d.json().error.details).toMatchObject({ image: 'short-lived' });
    expect((await t.api('GET', '/api/v1/machines/img-3')).json().state).toBe('available');
  });

  it('removes at start the temp files of uploads a crash cut short, and old version files no image names', async () => {
    const store = join(imagesDir(), '_store');
    mkdirSync(store, { recursive: true });
    const kept = storeFiles();
    writeFileSync(join(imagesDir(), '.upload-crashed-before'), 'partial');
    writeFileSync(join(store, '.upload-crashed'), 'partial');
    writeFileSync(join(store, 'orphan'), 'renamed, never committed');
    // Its chunk index goes with it; the indexes of stored images stay (they are in `kept`).
    writeFileSync(join(store, 'orphan.chunks.json'), '{}');
    expect(kept.some((f) => f.endsWith('.chunks.json'))).toBe(true);
    const dayAgo = new Date(Date.now() - 24 * 3600e3);
    utimesSync(join(store, 'orphan'), dayAgo, dayAgo);
    utimesSync(join(store, 'orphan.chunks.json'), dayAgo, dayAgo);
    // Just renamed by another controller sharing the directory, its row not yet committed.
    writeFileSync(join(store, 'committing'), 'bytes');
    await t.controller.close();
    await start();
    expect(storeFiles()).toEqual([...kept, '_store/committing'].sort());
    expect((await get('/boot/files/race.iso')).status).toBe(200);
  });
});
