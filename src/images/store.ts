import { appendEvent } from '../events/log.js';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { Db, Store } from '../store/database.js';
import { fromJson, toJson, uniqueViolation } from '../store/database.js';
import type { ImagesTable } from '../store/schema.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { PlinthError, duplicate, validation } from '../core/errors.js';
import { checksumFileName, imageFileName, manifestFileName } from './builder/index.js';
import { ChunkIndexer, chunkIndexProblem, ChunkIndexSchema, type ChunkIndex } from '../protocol/chunk-index.js';
import Value from 'typebox/value';

const execFileAsync = promisify(execFile);

/**
 * The image store: disk images (kept raw, what the agent streams to disk), and the files
 * installer-native deploys boot (kernels, initrds, ISOs). Each has its sha256 and size;
 * uploads are streamed to disk while hashed, never held in memory.
 */
export const IMAGE_KINDS = ['disk', 'kernel', 'initrd', 'iso', 'file'] as const;
export type ImageKind = (typeof IMAGE_KINDS)[number];
/** What a disk image holds: a whole disk (its own partition table), or one file system (a partition image). */
export const DISK_LAYOUTS = ['whole-disk', 'partition'] as const;
export type DiskLayout = (typeof DISK_LAYOUTS)[number];

export interface Image {
  id: string;
  name: string;
  kind: ImageKind;
  sourceFormat: 'raw' | 'qcow2';
  /** Disk images: what they hold (detected when stored); null for the other kinds. */
  layout: DiskLayout | null;
  sizeBytes: number;
  sha256: string;
  firmware: ('bios' | 'uefi')[] | null;
  manifest: Record<string, unknown> | null;
  createdAt: string;
  /** Where the bytes are, relative to the store directory; internal, the API schema leaves it out. */
  file: string;
}

const toImage = (r: ImagesTable): Image => ({
  id: r.id,
  name: r.name,
  kind: r.kind as ImageKind,
  sourceFormat: r.source_format as Image['sourceFormat'],
  layout: r.layout as DiskLayout | null,
  sizeBytes: Number(r.size_bytes),
  sha256: r.sha256,
  firmware: fromJson(r.firmware, null),
  manifest: fromJson(r.manifest, null),
  createdAt: r.created_at,
  file: r.file,
});

export const IMAGE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$';
const NAME = new RegExp(IMAGE_NAME_PATTERN);

/** Hashes what flows through it, the whole and each chunk (the chunk index of a raw disk image). */
function hasher(): { stream: Transform; index: () => ChunkIndex } {
  const h = new ChunkIndexer();
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      cb(null, chunk);
    },
  });
  return { stream, index: () => h.finish() };
}

/** A file's chunk index, its `imageSha256` the whole file's checksum, in one read. */
async function indexFile(path: string): Promise<ChunkIndex> {
  const h = new ChunkIndexer();
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) h.update(chunk as Buffer);
  return h.finish();
}

/**
 * The chunk index of the image file at `imagePath` lives beside it, at this path: a plain
 * file (JSON) that whoever serves or caches the image can serve or cache with it.
 */
export const chunkIndexPath = (imagePath: string) => `${imagePath}${CHUNK_INDEX_SUFFIX}`;
const CHUNK_INDEX_SUFFIX = '.chunks.json';

/** Writes an index durably (temp file, fsync, rename) and returns the SHA-256 of its bytes. */
function writeChunkIndex(imagePath: string, index: ChunkIndex): string {
  const body = Buffer.from(`${JSON.stringify(index)}\n`);
  const final = chunkIndexPath(imagePath);
  const tmp = `${final}.${newId()}.tmp`;
  try {
    writeFileSync(tmp, body, { mode: 0o644 });
    fsyncPath(tmp);
    renameSync(tmp, final);
  } finally {
    rmSync(tmp, { force: true });
  }
  return createHash('sha256').update(body).digest('hex');
}

const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/**
 * What a raw disk image holds, by its signatures (`blkid --probe` on the file): a file system
 * and no partition table is a partition image; anything else (a partition table, or bytes
 * blkid recognises nothing in) is a whole disk, as every disk image was taken to be before.
 */
export async function diskImageLayout(path: string): Promise<DiskLayout> {
  // NOTE: blkid exits 2 when it finds nothing and 8 when signatures contradict each other: answers, not failures.
  const { stdout } = await execFileAsync('blkid', ['--probe', '--output', 'export', path]).catch((e: { code?: unknown; stdout?: string }) => {
    if (e.code === 2 || e.code === 8) return { stdout: '' };
    throw e;
  });
  const found = new Map(stdout.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  return !found.has('PTTYPE') && found.get('USAGE') === 'filesystem' ? 'partition' : 'whole-disk';
}

/**
 * Bytes live under per-version names, `_store/<id>`, referenced from the image's row: two
 * images never share a file whatever their names and kinds, and replacing or racing an upload
 * never touches bytes another row points to. (Image names start with a letter or digit, so
 * `_store` cannot be one; rows written before this layout keep their old `file`.)
 */
const VERSIONS = '_store';
/** Uploads are written to a temp file beside their final place, then renamed. */
const TEMP_PREFIX = '.upload-';
/**
 * An unreferenced version file this old is a crash's leftover, not an upload between its
 * rename and its commit (a few milliseconds, the file touched just before the rename), so
 * another controller sharing the directory never loses an image being committed.
 */
const ORPHAN_AGE_MS = 60 * 60 * 1000;

/** States in which a machine's current run may still fetch what it deploys. */
const DEPLOYING = ['deploying', 'deploy-wait'] as const;

/** Flushes a file, or a directory's entries, to disk. */
function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Machines whose running deploy uses the image: a disk image named by the run, or a store
 * file (kernel, initrd, ISO) its rendered installer artifacts point at (`/boot/files/NAME`).
 * Deleting or replacing those bytes would fail the deploy mid-download.
 */
export async function machinesDeploying(db: Db, name: string): Promise<string[]> {
  const runs = await db
    .selectFrom('machines')
    .innerJoin('runs', 'runs.id', 'machines.current_run_id')
    .select(['machines.name as machine', 'runs.id as runId', 'runs.params as params'])
    .where('machines.state', 'in', [...DEPLOYING])
    .where('runs.kind', '=', 'deploy')
    .orderBy('machines.name')
    .execute();
  const users = new Set<string>();
  const native: typeof runs = [];
  for (const r of runs) {
    const p = fromJson<{ method?: string; image?: string | null }>(r.params, {});
    if (p.image === name) users.add(r.machine);
    else if (p.method && p.method !== 'image') native.push(r);
  }
  if (native.length) {
    const ref = new RegExp(`/boot/files/${name.replace(/[.]/g, '\\.')}(?![A-Za-z0-9._-])`);
    const byRun = new Map(native.map((r) => [r.runId, r.machine]));
    const artifacts = await db.selectFrom('run_artifacts').select(['run_id', 'body']).where('run_id', 'in', [...byRun.keys()]).execute();
    for (const a of artifacts) if (ref.test(a.body)) users.add(byRun.get(a.run_id)!);
  }
  return [...users].sort();
}

function inUse(image: string, machines: string[], doing: string): PlinthError {
  const shown = machines.slice(0, 10);
  return new PlinthError('conflict', `image ${image} is in use by ${shown.join(', ')}${machines.length > shown.length ? ', …' : ''}; ${doing}`, {
    details: { image, machines },
  });
}

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

  /** The file of an image with these bytes (any kind), or null: what a site cache fetches by sha256. */
  async pathBySha256(sha256: string): Promise<string | null> {
    const r = await this.store.db.selectFrom('images').selectAll().where('sha256', '=', sha256).orderBy('created_at').executeTakeFirst();
    return r ? this.path(toImage(r)) : null;
  }

  /** Where an image's bytes are (raw for disk images). */
  path(image: Image): string {
    return join(this.dir, image.file);
  }

  /**
   * Moves finished bytes to a fresh version name, durably: the data is flushed before the
   * rename, the directory after it, so a crash leaves the file whole or absent. Touched first
   * so that start-up cleanup never takes it for an old orphan while its row is committed.
   */
  private keep(tmp: string, index: ChunkIndex | null): string {
    const file = `${VERSIONS}/${newId()}`;
    fsyncPath(tmp);
    // The index first: a version file never lacks the index it was kept with.
    if (index) writeChunkIndex(join(this.dir, file), index);
    const now = new Date();
    utimesSync(tmp, now, now);
    renameSync(tmp, join(this.dir, file));
    fsyncPath(join(this.dir, VERSIONS));
    return file;
  }

  /** Removes a version file after its row is gone, unless a row (an old one) still names it. */
  private async forget(file: string): Promise<void> {
    const still = await this.store.db.selectFrom('images').select('id').where('file', '=', file).executeTakeFirst();
    if (!still) this.removeVersion(file);
  }

  /** A version file and its chunk index. */
  private removeVersion(file: string): void {
    rmSync(join(this.dir, file), { force: true });
    rmSync(chunkIndexPath(join(this.dir, file)), { force: true });
  }

  /**
   * A disk image's chunk index: its path and the SHA-256 of its bytes (what the deploy's run
   * parameters record). Kept since the upload or build; an image stored before indexes existed
   * (or whose index file is gone or belongs to other bytes) is indexed now, once.
   */
  async chunkIndex(image: Image): Promise<{ path: string; sha256: string }> {
    const imagePath = this.path(image);
    const path = chunkIndexPath(imagePath);
    if (existsSync(path)) {
      const body = readFileSync(path);
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        // rebuilt below
      }
      if (Value.Check(ChunkIndexSchema, parsed) && chunkIndexProblem(parsed, image) === null) return { path, sha256: createHash('sha256').update(body).digest('hex') };
    }
    const index = await indexFile(imagePath);
    if (index.imageSha256 !== image.sha256 || index.sizeBytes !== image.sizeBytes) {
      throw new PlinthError('checksum_mismatch', `image ${image.name}: its file has sha256 ${index.imageSha256} (${index.sizeBytes} bytes), not the recorded ${image.sha256} (${image.sizeBytes} bytes)`, {
        details: { image: image.name },
      });
    }
    return { path, sha256: writeChunkIndex(imagePath, index) };
  }

  /**
   * Commits a kept file as `row`: inserts it, or with `replace` points the existing image of
   * that name at it, refused while a deploy fetches the old bytes. The file a row stops naming
   * is removed only after the commit. On failure the caller still owns the new file.
   */
  private async commit(row: ImagesTable, replace: boolean): Promise<Image> {
    let old: ImagesTable | undefined;
    try {
      await this.store.transaction(async (trx) => {
        old = replace ? await this.store.forUpdate(trx.selectFrom('images').selectAll().where('name', '=', row.name)).executeTakeFirst() : undefined;
        if (old) {
          const users = await machinesDeploying(trx, old.name);
          if (users.length) throw inUse(old.name, users, 'replace it when their deploys end');
          await trx.deleteFrom('images').where('id', '=', old.id).execute();
          row = { ...row, id: old.id };
        }
        await trx.insertInto('images').values(row).execute();
        await appendEvent(trx, { type: old ? 'image.replaced' : 'image.added', at: row.created_at, actor: 'controller', action: old ? 'replaced' : 'added', reason: null, details: { image: row.name, kind: row.kind, sha256: row.sha256 } });
      });
    } catch (e) {
      if (uniqueViolation(e)) throw duplicate('name', row.name);
      throw e;
    }
    if (old && old.file !== row.file) await this.forget(old.file);
    return toImage(row);
  }

  /**
   * In a deploy's own transaction: the image it was prepared from is still stored with those
   * bytes, and its row stays locked until the deploy is recorded, so a delete or replace either
   * sees the deploy (and is refused) or happened first (and the deploy is refused).
   */
  async hold(trx: Db, name: string, sha256: string): Promise<void> {
    const row = await this.store.forUpdate(trx.selectFrom('images').select('sha256').where('name', '=', name)).executeTakeFirst();
    if (row?.sha256 !== sha256) {
      throw new PlinthError('conflict', `image ${name} was deleted or replaced while this deploy was prepared; deploy again`, { details: { image: name } });
    }
  }

  /**
   * Stores an upload. `expectedSha256` (what the client computed of the bytes it sent) is
   * checked before anything is kept; qcow2 disk images are converted to raw, the form the
   * agent writes, and the raw image's checksum is what deploys verify. The bytes go to a temp
   * file of their own and then to a version file of their own: a concurrent upload of the same
   * name loses on the name's unique index and removes only what it wrote.
   */
  async upload(o: { name: string; kind: ImageKind; body: Readable; expectedSha256?: string; format?: 'raw' | 'qcow2' }): Promise<Image> {
    if (!NAME.test(o.name)) throw validation('name', `'${o.name}' must be letters, digits, '.', '_' or '-' (at most 100)`);
    if (await this.find(o.name)) throw duplicate('name', o.name);
    mkdirSync(join(this.dir, VERSIONS), { recursive: true });
    const tmp = join(this.dir, VERSIONS, `${TEMP_PREFIX}${newId()}`);
    const h = hasher();
    try {
      await pipeline(o.body, h.stream, createWriteStream(tmp));
      let index = h.index();
      const uploadedSha = index.imageSha256;
      if (o.expectedSha256 && o.expectedSha256.toLowerCase() !== uploadedSha) {
        throw new PlinthError('checksum_mismatch', `sha256: the upload's checksum is ${uploadedSha}, not ${o.expectedSha256} (transfer damaged?)`, {
          details: { field: 'sha256', expected: o.expectedSha256, actual: uploadedSha },
        });
      }
      if (index.sizeBytes === 0) throw validation('body', 'the upload is empty');
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
        index = await indexFile(finalTmp);
        sha256 = index.imageSha256;
      }
      const size = statSync(finalTmp).size;
      const layout = o.kind === 'disk' ? await diskImageLayout(finalTmp) : null;
      const file = this.keep(finalTmp, o.kind === 'disk' ? index : null);
      try {
        return await this.commit(
          { id: newId(), name: o.name, kind: o.kind, file, source_format: sourceFormat, size_bytes: size, sha256, firmware: null, manifest: null, created_at: iso(this.clock.now()), layout },
          false,
        );
      } catch (e) {
        // The loser of a race on the name removes its own version file, nothing else.
        this.removeVersion(file);
        throw e;
      }
    } finally {
      rmSync(tmp, { force: true });
      rmSync(`${tmp}.raw`, { force: true });
    }
  }

  /**
   * Registers an image `plinth image build` left in the store directory (NAME.raw, .sha256,
   * .manifest.json), moving its bytes to a version file; an image of that name is replaced
   * (refused while a deploy uses it).
   */
  async adopt(name: string): Promise<Image> {
    if (!NAME.test(name)) throw validation('name', `'${name}' is not an image name`);
    const raw = join(this.dir, imageFileName(name));
    const manifestPath = join(this.dir, manifestFileName(name));
    if (!existsSync(raw) || !existsSync(manifestPath)) {
      throw new PlinthError('not_found', `no built image '${name}' in ${this.dir} (run plinth image build ${name})`);
    }
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
    const recorded = readFileSync(join(this.dir, checksumFileName(name)), 'utf8').split(/\s+/)[0]!;
    const index = await indexFile(raw);
    const actual = index.imageSha256;
    if (actual !== recorded) throw new PlinthError('checksum_mismatch', `image ${name} does not match its recorded checksum (${actual} ≠ ${recorded})`);
    // Refuse early, before moving the build's output, when a deploy uses the image (commit checks again).
    const users = await machinesDeploying(this.store.db, name);
    if (users.length) throw inUse(name, users, 'adopt the new build when their deploys end');
    // Before version files, a disk image's row named the build's output itself.
    const other = await this.store.db.selectFrom('images').select('name').where('file', '=', imageFileName(name)).where('name', '!=', name).executeTakeFirst();
    if (other) throw new PlinthError('conflict', `${imageFileName(name)} holds the bytes of image ${other.name}; delete that image first`, { details: { image: other.name } });
    mkdirSync(join(this.dir, VERSIONS), { recursive: true });
    const layout = await diskImageLayout(raw);
    const file = this.keep(raw, index);
    let image: Image;
    try {
      image = await this.commit(
        {
          id: newId(),
          name,
          kind: 'disk',
          file,
          source_format: 'raw',
          size_bytes: statSync(join(this.dir, file)).size,
          sha256: actual,
          firmware: toJson(manifest.firmware ?? null),
          manifest: JSON.stringify(manifest),
          created_at: iso(this.clock.now()),
          layout,
        },
        true,
      );
    } catch (e) {
      // Refused: the build's output goes back where the builder left it.
      renameSync(join(this.dir, file), raw);
      rmSync(chunkIndexPath(join(this.dir, file)), { force: true });
      throw e;
    }
    // The row holds the checksum and the manifest now; adopting again needs a new build.
    for (const f of [checksumFileName(name), manifestFileName(name)]) rmSync(join(this.dir, f), { force: true });
    return image;
  }

  /** Deletes an image no deployed machine runs and no running deploy uses. */
  async delete(key: string): Promise<Image> {
    const image = await this.get(key);
    await this.store.transaction(async (trx) => {
      const row = await this.store.forUpdate(trx.selectFrom('images').select('id').where('id', '=', image.id)).executeTakeFirst();
      if (!row) throw new PlinthError('not_found', `image '${key}' not found`, { details: { image: key } });
      const deploying = await machinesDeploying(trx, image.name);
      if (deploying.length) throw inUse(image.name, deploying, 'delete it when their deploys end');
      const deployed = await trx
        .selectFrom('machines')
        .select('name')
        .where('deployed_image', '=', image.name)
        .where('state', 'in', ['deployed', ...DEPLOYING])
        .orderBy('name')
        .limit(11)
        .execute();
      if (deployed.length) throw inUse(image.name, deployed.map((u) => u.name), 'release them first');
      await trx.deleteFrom('images').where('id', '=', image.id).execute();
      await appendEvent(trx, { type: 'image.deleted', at: iso(this.clock.now()), actor: 'controller', action: 'deleted', reason: null, details: { image: image.name, kind: image.kind } });
    });
    await this.forget(image.file);
    if (image.kind === 'disk' && image.file === imageFileName(image.name)) {
      // A row from before version files: its build's checksum and manifest lie beside it.
      rmSync(join(this.dir, checksumFileName(image.name)), { force: true });
      rmSync(join(this.dir, manifestFileName(image.name)), { force: true });
    }
    return image;
  }

  /**
   * At start: removes what a crash left behind, the temp files of interrupted uploads
   * (beside the version files, and where older versions wrote them) and version files no row
   * names that are older than ORPHAN_AGE_MS. Returns the names removed.
   */
  async removeLeftovers(now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    const versions = join(this.dir, VERSIONS);
    for (const dir of [this.dir, versions]) {
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        if (!f.startsWith(TEMP_PREFIX)) continue;
        rmSync(join(dir, f), { force: true });
        removed.push(relative(this.dir, join(dir, f)));
      }
    }
    if (existsSync(versions)) {
      const named = new Set((await this.store.db.selectFrom('images').select('file').execute()).map((r) => r.file));
      for (const f of readdirSync(versions)) {
        const file = `${VERSIONS}/${f}`;
        // An index (or its temp file) goes with its version file.
        const version = f.includes(CHUNK_INDEX_SUFFIX) ? `${VERSIONS}/${f.slice(0, f.indexOf(CHUNK_INDEX_SUFFIX))}` : file;
        if (named.has(version) || now - statSync(join(versions, f)).mtimeMs < ORPHAN_AGE_MS) continue;
        rmSync(join(versions, f), { force: true });
        removed.push(file);
      }
    }
    return removed;
  }
}
