import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { Store } from '../store/database.js';
import { fromJson, toJson, uniqueViolation } from '../store/database.js';
import type { ImagesTable } from '../store/schema.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { PlinthError, duplicate, validation } from '../core/errors.js';
import { checksumFileName, imageFileName, manifestFileName } from './builder/index.js';

const execFileAsync = promisify(execFile);

/**
 * The image store: disk images (kept raw, what the agent streams to disk), and the files
 * installer-native deploys boot (kernels, initrds, ISOs). Each has its sha256 and size;
 * uploads are streamed to disk while hashed, never held in memory.
 */
export const IMAGE_KINDS = ['disk', 'kernel', 'initrd', 'iso', 'file'] as const;
export type ImageKind = (typeof IMAGE_KINDS)[number];

export interface Image {
  id: string;
  name: string;
  kind: ImageKind;
  sourceFormat: 'raw' | 'qcow2';
  sizeBytes: number;
  sha256: string;
  firmware: ('bios' | 'uefi')[] | null;
  manifest: Record<string, unknown> | null;
  createdAt: string;
}

const toImage = (r: ImagesTable): Image => ({
  id: r.id,
  name: r.name,
  kind: r.kind as ImageKind,
  sourceFormat: r.source_format as Image['sourceFormat'],
  sizeBytes: Number(r.size_bytes),
  sha256: r.sha256,
  firmware: fromJson(r.firmware, null),
  manifest: fromJson(r.manifest, null),
  createdAt: r.created_at,
});

export const IMAGE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$';
const NAME = new RegExp(IMAGE_NAME_PATTERN);

/** Hashes what flows through it. */
function hasher(): { stream: Transform; digest: () => string; bytes: () => number } {
  const h = createHash('sha256');
  let n = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      n += chunk.length;
      cb(null, chunk);
    },
  });
  return { stream, digest: () => h.digest('hex'), bytes: () => n };
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

export class ImageStore {
  readonly dir: string;
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    dataDir: string,
  ) {
    this.dir = join(dataDir, 'images');
  }

  async list(): Promise<Image[]> {
    return (await this.store.db.selectFrom('images').selectAll().orderBy('name').execute()).map(toImage);
  }

  async find(key: string): Promise<Image | null> {
    const r = await this.store.db
      .selectFrom('images')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', key), eb('name', '=', key)]))
      .executeTakeFirst();
    return r ? toImage(r) : null;
  }

  async get(key: string): Promise<Image> {
    const i = await this.find(key);
    if (!i) throw new PlinthError('not_found', `image '${key}' not found`, { details: { image: key } });
    return i;
  }

  /** Where an image's bytes are (raw for disk images). */
  path(image: Image): string {
    return join(this.dir, image.kind === 'disk' ? imageFileName(image.name) : image.name);
  }

  private async insert(row: ImagesTable): Promise<Image> {
    try {
      await this.store.db.insertInto('images').values(row).execute();
    } catch (e) {
      if (uniqueViolation(e)) throw duplicate('name', row.name);
      throw e;
    }
    return toImage(row);
  }

  /**
   * Stores an upload. `expectedSha256` (what the client computed of the bytes it sent) is
   * checked before anything is kept; qcow2 disk images are converted to raw, the form the
   * agent writes, and the raw image's checksum is what deploys verify.
   */
  async upload(o: { name: string; kind: ImageKind; body: Readable; expectedSha256?: string; format?: 'raw' | 'qcow2' }): Promise<Image> {
    if (!NAME.test(o.name)) throw validation('name', `'${o.name}' must be letters, digits, '.', '_' or '-' (at most 100)`);
    if (await this.find(o.name)) throw duplicate('name', o.name);
    mkdirSync(this.dir, { recursive: true });
    const tmp = join(this.dir, `.upload-${newId()}`);
    const h = hasher();
    try {
      await pipeline(o.body, h.stream, createWriteStream(tmp));
      const uploadedSha = h.digest();
      if (o.expectedSha256 && o.expectedSha256.toLowerCase() !== uploadedSha) {
        throw new PlinthError('validation', `sha256: the upload's checksum is ${uploadedSha}, not ${o.expectedSha256} (transfer damaged?)`, {
          status: 422,
          details: { field: 'sha256', expected: o.expectedSha256, actual: uploadedSha },
        });
      }
      if (h.bytes() === 0) throw validation('body', 'the upload is empty');
      const head = Buffer.alloc(4);
      const fd = openSync(tmp, 'r');
      try {
        readSync(fd, head, 0, 4, 0);
      } finally {
        closeSync(fd);
      }
      const isQcow2 = head.equals(QCOW2_MAGIC);
      if (o.format === 'raw' && isQcow2) throw validation('format', 'the file is qcow2, not raw');
      if (o.format === 'qcow2' && !isQcow2) throw validation('format', 'the file is not qcow2');
      let sourceFormat: 'raw' | 'qcow2' = 'raw';
      let finalTmp = tmp;
      let sha256 = uploadedSha;
      if (isQcow2) {
        if (o.kind !== 'disk') throw validation('kind', 'only disk images may be qcow2');
        sourceFormat = 'qcow2';
        finalTmp = `${tmp}.raw`;
        await execFileAsync('qemu-img', ['convert', '-q', '-f', 'qcow2', '-O', 'raw', tmp, finalTmp]).catch((e) => {
          throw validation('body', `qemu-img could not read the qcow2 image: ${(e as { stderr?: string }).stderr?.trim() ?? (e as Error).message}`);
        });
        rmSync(tmp, { force: true });
        sha256 = await sha256File(finalTmp);
      }
      const row: ImagesTable = {
        id: newId(),
        name: o.name,
        kind: o.kind,
        file: o.kind === 'disk' ? imageFileName(o.name) : o.name,
        source_format: sourceFormat,
        size_bytes: statSync(finalTmp).size,
        sha256,
        firmware: null,
        manifest: null,
        created_at: iso(this.clock.now()),
      };
      renameSync(finalTmp, join(this.dir, row.file));
      try {
        return await this.insert(row);
      } catch (e) {
        rmSync(join(this.dir, row.file), { force: true });
        throw e;
      }
    } finally {
      rmSync(tmp, { force: true });
      rmSync(`${tmp}.raw`, { force: true });
    }
  }

  /** Registers an image `plinth image build` left in the store directory (NAME.raw, .sha256, .manifest.json). */
  async adopt(name: string): Promise<Image> {
    if (!NAME.test(name)) throw validation('name', `'${name}' is not an image name`);
    const raw = join(this.dir, imageFileName(name));
    const manifestPath = join(this.dir, manifestFileName(name));
    if (!existsSync(raw) || !existsSync(manifestPath)) {
      throw new PlinthError('not_found', `no built image '${name}' in ${this.dir} (run plinth image build ${name})`);
    }
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
    const recorded = readFileSync(join(this.dir, checksumFileName(name)), 'utf8').split(/\s+/)[0]!;
    const actual = await sha256File(raw);
    if (actual !== recorded) throw new PlinthError('validation', `image ${name} does not match its recorded checksum (${actual} ≠ ${recorded})`, { status: 422 });
    const existing = await this.find(name);
    if (existing) await this.store.db.deleteFrom('images').where('id', '=', existing.id).execute();
    return this.insert({
      id: existing?.id ?? newId(),
      name,
      kind: 'disk',
      file: imageFileName(name),
      source_format: 'raw',
      size_bytes: statSync(raw).size,
      sha256: actual,
      firmware: toJson(manifest.firmware ?? null),
      manifest: JSON.stringify(manifest),
      created_at: iso(this.clock.now()),
    });
  }

  /** Deletes an image no deployed machine runs. */
  async delete(key: string): Promise<Image> {
    const image = await this.get(key);
    const users = await this.store.db
      .selectFrom('machines')
      .select('name')
      .where('deployed_image', '=', image.name)
      .where('state', 'in', ['deployed', 'deploying', 'deploy-wait'])
      .limit(5)
      .execute();
    if (users.length) {
      throw new PlinthError('conflict', `image ${image.name} is deployed on ${users.map((u) => u.name).join(', ')}${users.length === 5 ? ', …' : ''}; release them first`, {
        details: { image: image.name, machines: users.map((u) => u.name) },
      });
    }
    await this.store.db.deleteFrom('images').where('id', '=', image.id).execute();
    rmSync(this.path(image), { force: true });
    if (image.kind === 'disk') {
      rmSync(join(this.dir, checksumFileName(image.name)), { force: true });
      rmSync(join(this.dir, manifestFileName(image.name)), { force: true });
    }
    return image;
  }
}
