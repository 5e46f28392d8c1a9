import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createWriteStream, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Logger } from '../core/logger.js';
import { formatBinarySize } from '../core/size.js';

/** Why a file could not be had, as the HTTP status a machine is answered with. */
export class CacheError extends Error {
  constructor(
    readonly status: 404 | 502 | 503,
    message: string,
  ) {
    super(message);
  }
}

/** Where a cache gets the files it lacks: the controller, by sha256. */
export interface FileSource {
  /**
   * Starts fetching a file: its size (Content-Length) and its bytes. Fails with a CacheError:
   * 404 when the source has no such file, 503 when it cannot be reached or fails.
   */
  fetch(sha256: string, signal: AbortSignal): Promise<{ size: number; body: AsyncIterable<Uint8Array> }>;
}

export interface CacheFigures {
  hits: number;
  misses: number;
  fetches: number;
  fetchedBytes: number;
  servedBytes: number;
  evictions: number;
  rejected: number;
  refused: number;
}

interface Entry {
  size: number;
  lastUsed: number;
  /** Requests reading the file now: it is never evicted while any is. */
  pins: number;
}

/** A file held for a reader: release it when the response is done. */
export interface HeldFile {
  path: string;
  size: number;
  /** Whether the file was held when asked for (else this request waited for a fetch). */
  hit: boolean;
  release(): void;
}

/**
 * The files of a site cache: named by their sha256 under DIR/files, fetched from the source
 * on a miss — once, however many requests wait for the same file — checked against that
 * sha256 and the announced size while they are written to DIR/tmp, and renamed into place
 * (after fsync) only when both match; nothing else is ever in DIR/files. Eviction removes the
 * least recently used files until the files and the fetches under way fit the size limit,
 * never a file a request is reading.
 */
export class FileCache {
  private readonly entries = new Map<string, Entry>();
  private readonly fills = new Map<string, Promise<void>>();
  /** Bytes announced by fetches under way: room is made for them before they start. */
  private reserved = 0;
  private clock = 0;
  readonly figures: CacheFigures = { hits: 0, misses: 0, fetches: 0, fetchedBytes: 0, servedBytes: 0, evictions: 0, rejected: 0, refused: 0 };

  constructor(
    private readonly o: { dir: string; limitBytes: number; source: FileSource; log: Logger; idleTimeoutMs?: number },
  ) {}

  private get filesDir(): string {
    return join(this.o.dir, 'files');
  }

  private get tmpDir(): string {
    return join(this.o.dir, 'tmp');
  }

  /**
   * Reads what an earlier run left: files already verified (their names are their sha256;
   * their mtime is when they were last used), and fetches cut short (thrown away).
   */
  open(): void {
    mkdirSync(this.filesDir, { recursive: true, mode: 0o750 });
    rmSync(this.tmpDir, { recursive: true, force: true });
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o750 });
    const found = readdirSync(this.filesDir)
      .filter((n) => /^[0-9a-f]{64}$/.test(n))
      .map((n) => ({ n, st: statSync(join(this.filesDir, n)) }))
      .sort((a, b) => a.st.mtimeMs - b.st.mtimeMs);
    for (const { n, st } of found) this.entries.set(n, { size: st.size, lastUsed: ++this.clock, pins: 0 });
    this.evict();
  }

  get usedBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.size;
    return n;
  }

  get fileCount(): number {
    return this.entries.size;
  }

  get limitBytes(): number {
    return this.o.limitBytes;
  }

  /** The file with this sha256, fetched first when it is not held; hold it until `release`. */
  async acquire(sha256: string): Promise<HeldFile> {
    let counted = false;
    // The file may be evicted between its fetch and this reader's turn (only when everything else is pinned): fetch again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const e = this.entries.get(sha256);
      if (e) {
        if (!counted) this.figures.hits++;
        e.pins++;
        e.lastUsed = ++this.clock;
        let released = false;
        return {
          path: join(this.filesDir, sha256),
          size: e.size,
          hit: !counted,
          release: () => {
            if (released) return;
            released = true;
            e.pins--;
            this.evict();
          },
        };
      }
      if (!counted) this.figures.misses++;
      counted = true;
      this.prefetch(sha256);
      await this.fills.get(sha256);
    }
    throw new CacheError(503, `sha256 ${sha256} was evicted as soon as it was fetched: the cache is too small for the files being served`);
  }

  /**
   * Fetches a file before any machine asks for it (the controller's `prefetch` list), unless it
   * is held or already being fetched. Failures are logged; a machine's request tries again.
   */
  prefetch(sha256: string): void {
    if (this.entries.has(sha256) || this.fills.has(sha256)) return;
    const fill = this.fill(sha256).finally(() => this.fills.delete(sha256));
    this.fills.set(sha256, fill);
    fill.catch(() => undefined);
  }

  private async fill(sha256: string): Promise<void> {
    const abort = new AbortController();
    const idleMs = this.o.idleTimeoutMs ?? 60_000;
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => abort.abort(new Error(`no data from the controller for ${idleMs / 1000} s`)), idleMs);
    };
    arm();
    const tmp = join(this.tmpDir, `${sha256}.${randomBytes(4).toString('hex')}`);
    let reserved = 0;
    try {
      const { size, body } = await this.o.source.fetch(sha256, abort.signal);
      if (size > this.o.limitBytes) throw new CacheError(503, `sha256 ${sha256} is ${formatBinarySize(size)}, more than the whole cache (${formatBinarySize(this.o.limitBytes)})`);
      reserved = size;
      this.reserved += size;
      this.evict();
      if (this.usedBytes + this.reserved > this.o.limitBytes) {
        throw new CacheError(503, `no room for ${formatBinarySize(size)}: the files being served and fetched fill the cache (${formatBinarySize(this.o.limitBytes)}); try again later`);
      }
      const hash = createHash('sha256');
      let got = 0;
      const out = createWriteStream(tmp, { mode: 0o640 });
      const closed = new Promise<void>((resolve, reject) => {
        out.once('close', resolve);
        out.once('error', reject);
      });
      try {
        for await (const chunk of body) {
          arm();
          got += chunk.length;
          this.figures.fetchedBytes += chunk.length;
          if (got > size) break;
          hash.update(chunk);
          if (!out.write(chunk)) await once(out, 'drain');
        }
      } catch (e) {
        throw new CacheError(503, `fetching sha256 ${sha256} from the controller failed at byte ${got}: ${(abort.signal.reason as Error | undefined)?.message ?? (e as Error).message}`);
      } finally {
        out.end();
        await closed;
      }
      const actual = hash.digest('hex');
      if (got !== size || actual !== sha256) {
        this.figures.rejected++;
        throw new CacheError(
          502,
          got !== size ? `the controller sent ${got} bytes of sha256 ${sha256}, not the ${size} it announced; nothing was kept` : `the controller sent bytes whose sha256 is ${actual}, not ${sha256}; nothing was kept`,
        );
      }
      const fd = openSync(tmp, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, join(this.filesDir, sha256));
      const dirFd = openSync(this.filesDir, 'r');
      try {
        fsyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
      this.figures.fetches++;
      this.entries.set(sha256, { size, lastUsed: ++this.clock, pins: 0 });
      this.o.log.info({ sha256, bytes: size }, 'site cache: file fetched from the controller and verified');
    } catch (e) {
      rmSync(tmp, { force: true });
      if (e instanceof CacheError) {
        this.o.log.warn({ sha256, err: e.message }, 'site cache: fetch failed');
        throw e;
      }
      throw new CacheError(503, `fetching sha256 ${sha256} failed: ${(e as Error).message}`);
    } finally {
      clearTimeout(idle);
      this.reserved -= reserved;
      this.evict();
    }
  }

  /** Removes least recently used files, none being read, until the files and the fetches under way fit the limit. */
  private evict(): void {
    let used = this.usedBytes;
    while (used + this.reserved > this.o.limitBytes) {
      let victim: [string, Entry] | null = null;
      for (const kv of this.entries) if (kv[1].pins === 0 && (!victim || kv[1].lastUsed < victim[1].lastUsed)) victim = kv;
      if (!victim) return;
      const [sha256, e] = victim;
      this.entries.delete(sha256);
      rmSync(join(this.filesDir, sha256), { force: true });
      used -= e.size;
      this.figures.evictions++;
      this.o.log.info({ sha256, bytes: e.size }, 'site cache: evicted (least recently used)');
    }
  }
}
