import { createHash, webcrypto } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import Value from 'typebox/value';
import { chunkIndexProblem, ChunkIndexSchema, chunkRange, isAllZero, type ChunkIndex } from '../../protocol/chunk-index.js';
import { assertNotInUse, describeBlockDevice, EXCLUSIVE_READ_WRITE, EXCLUSIVE_WRITE, type BlockDevice } from './block-device.js';
import { StepError } from './errors.js';
import type { ImageChunkSource } from './multicast-receive.js';
import type { DiskReceiver } from './uftp-receive.js';
import { formatBytes, formatRate, MiB } from './units.js';

/**
 * Streams a raw image over HTTP onto a block device, hashing it on the way (the SHA-256 is
 * of the bytes as written; nothing is read back), resuming with a Range request when the
 * connection drops.
 *
 * With the image's chunk index (`index`, src/protocol/chunk-index.ts; its own SHA-256 comes
 * with the run parameters, and it names the image's SHA-256 and size), the image is written
 * chunk by chunk instead: zero chunks are written here without being fetched, the other
 * chunks are fetched with one Range request per contiguous run of them, and each is verified
 * against its index entry before it is written (hashed off the main thread, while the next
 * one arrives). A chunk that does not match is fetched again, alone; a second mismatch fails
 * the write. With `differential` (the disk may hold an earlier version of the image) each
 * chunk is read from the disk first and kept when it already matches — a zero chunk compared
 * with zeros, the others by their SHA-256 — so only what changed crosses the network. The
 * result says how many bytes were fetched, zero-filled and kept.
 *
 * Every byte of the image is written (or, differential, read and found right), zeros
 * included: skipping zero runs unread is only safe on a target known to read back zeros,
 * which a reused disk is not.
 *
 * When the write fails after it started, or the checksum does not match, the disk holds a
 * partial or corrupt image that firmware may still try to boot. The first MiB (protective
 * MBR, primary GPT, boot code), the image's last MiB (its backup GPT) and the disk's last MiB
 * (a backup GPT from an earlier install) are zeroed, so that the disk boots nothing.
 *
 * With a `multicast` source the image comes from it first, into the same hash and writer;
 * HTTP is the fallback: it resumes with a Range request where the source stopped (it found
 * no session, stalled or failed), or writes the whole image again when the bytes the source
 * delivered do not match the checksum. The result says which transport brought how much.
 * (A multicast write streams the whole image and checks its whole checksum; the index is
 * not used.)
 *
 * A `diskReceiver` (uftp) writes the image onto the disk itself, before anything here; the
 * write is then a differential one against the index (which it needs): every chunk the
 * session wrote right is kept, every other one fetched over HTTP. Whatever the session did
 * or did not deliver, each byte is checked against the index.
 */
export interface WriteImageOptions {
  url: string;
  /** Hex SHA-256 of the whole raw image. */
  sha256: string;
  sizeBytes: number;
  /** Block device to write: /dev/sda, or a symlink to one. */
  device: string;
  /** Run token, sent as Bearer; omit for a server that is not the controller. */
  token?: string | null;
  /** The image's chunk index: where it is, the SHA-256 of its bytes, the token to send there (the controller's run token). */
  index?: { url: string; sha256: string; token?: string | null } | null;
  /** Read the disk first and keep the chunks it already holds (needs `index`). */
  differential?: boolean;
  /**
   * Zero chunks between two runs of chunks to fetch are fetched with them (one request, not
   * two) when they are this many bytes or fewer. Default 1 MiB; 0 fetches no zero chunk.
   */
  mergeGapBytes?: number;
  fetch?: typeof fetch;
  log: (line: string) => void;
  onProgress?: (progress: WriteProgress) => void;
  /** Pauses before each retry; the last one repeats. */
  backoffMs?: readonly number[];
  /** Attempts in a row that write nothing before giving up (network). Default 8. */
  maxFruitlessAttempts?: number;
  /** A connection that brings no byte for this long is dropped and resumed. Default 60 s. */
  idleTimeoutMs?: number;
  /** Bytes gathered before each write to the device (two such buffers). Default 8 MiB. */
  bufferBytes?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Tried first (a multicast session); HTTP completes or repairs what it delivers. */
  multicast?: ImageChunkSource;
  /** Writes the image onto the disk first (a uftp session); the index then checks and repairs it. Needs `index`. */
  diskReceiver?: DiskReceiver;
}

export type ImageTransport = 'multicast' | 'http';

export interface WriteProgress {
  bytesWritten: number;
  totalBytes: number;
  bytesPerSecond: number;
  /** Connections made so far (1 + resumes). */
  attempt: number;
}

/** How a write with a chunk index got each byte of the image onto the disk. */
export interface ChunkedWrite {
  chunkBytes: number;
  /** Image bytes fetched from the server (chunks fetched again after a mismatch included). */
  fetchedBytes: number;
  /** Zero chunks written here, never fetched. */
  zeroFilledBytes: number;
  /** Differential: chunks the disk already held, read and kept. */
  keptBytes: number;
  /** Chunks that did not match their index entry when fetched, and were fetched again. */
  repairedChunks: number[];
  /** Range requests made for the image's chunks (resumes included). */
  requests: number;
  differential: boolean;
}

export interface WriteImageResult {
  device: string;
  bytes: number;
  sha256: string;
  /** From the first request to the end of the final fsync. */
  seconds: number;
  bytesPerSecond: number;
  attempts: number;
  /** Byte offsets the transfer resumed from, one per dropped connection. */
  resumedAt: number[];
  /** `multicast` when the session delivered the whole verified image, else `http`. */
  transport: ImageTransport;
  /** Bytes received by each transport (a repaired image counts its discarded multicast bytes). */
  bytesReceived: Record<ImageTransport, number>;
  /** Why HTTP had to complete or repair a multicast transfer. */
  multicastFallback?: string;
  /** Written with the image's chunk index: what was fetched, zero-filled, kept. */
  chunks?: ChunkedWrite;
}

/** A failure worth another attempt: the connection, a 5xx, a stalled transfer. */
class RetryableError extends Error {}

const SCRUB_BYTES = MiB;
/** Fetched chunks being hashed or written at once (each is a buffer of the index's chunk size). */
const CHUNKS_IN_FLIGHT = 4;

export async function writeImage(o: WriteImageOptions): Promise<WriteImageResult> {
  const fetchImpl = o.fetch ?? globalThis.fetch;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const backoffMs = o.backoffMs ?? [1000, 2000, 4000, 8000, 15000];
  const maxFruitless = o.maxFruitlessAttempts ?? 8;
  const idleTimeoutMs = o.idleTimeoutMs ?? 60_000;
  const expected = o.sha256.toLowerCase();
  if (o.differential && !o.index) throw new StepError('params', "a differential write needs the image's chunk index", { field: 'params.image.differential' });
  if (o.diskReceiver && !o.index) throw new StepError('params', "a uftp session's image is checked against its chunk index, which the run does not name", { field: 'params.image.index' });
  // A multicast session streams the whole image; the index is for HTTP writes (and checks what uftp wrote).
  const chunkedRef = o.index && !o.multicast ? o.index : null;
  const differential = Boolean(chunkedRef && (o.differential || o.diskReceiver));

  const disk = await describeBlockDevice(o.device);
  if (o.sizeBytes > disk.sizeBytes) {
    throw new StepError('disk', `${disk.name}: the image (${formatBytes(o.sizeBytes)}, ${o.sizeBytes} bytes) does not fit on it (${formatBytes(disk.sizeBytes)}, ${disk.sizeBytes} bytes)`, {
      disk: disk.name,
      imageBytes: o.sizeBytes,
      diskBytes: disk.sizeBytes,
    });
  }
  await assertNotInUse(disk);
  const bytesReceived: Record<ImageTransport, number> = { multicast: 0, http: 0 };
  let multicastFallback: string | undefined;
  const started = performance.now();
  if (o.diskReceiver) {
    o.log(`write-image: receiving onto ${disk.path} from ${o.diskReceiver.describe}`);
    try {
      await o.diskReceiver.receive(disk.path, disk.sizeBytes);
    } catch (e) {
      multicastFallback = (e as Error).message;
      o.log(`write-image: ${o.diskReceiver.describe} stopped: ${multicastFallback}; what it wrote is checked, the rest comes over HTTP`);
    }
  }
  let fh: FileHandle;
  try {
    fh = await fsp.open(disk.path, differential ? EXCLUSIVE_READ_WRITE : EXCLUSIVE_WRITE);
  } catch (e) {
    throw new StepError('disk', `${disk.name}: cannot open for writing: ${(e as Error).message}`, { disk: disk.name });
  }

  const writer = new DeviceWriter(fh, disk, o.bufferBytes ?? 8 * MiB);
  let hash = createHash('sha256');
  const seconds = () => (performance.now() - started) / 1000;
  /** Bytes of the image on the disk so far (written, or found there by a differential write). */
  let received = 0;
  let attempts = 0;
  const resumedAt: number[] = [];
  let chunks: ChunkedWrite | undefined;
  /** What the first answer said the image is; later answers must say the same. */
  let validator: { etag: string | null } | null = null;
  let lastReportedTenth = 0;
  let lastProgressAt = 0;

  const progress = () => {
    const now = performance.now();
    const tenth = Math.floor((received * 10) / o.sizeBytes);
    if (tenth > lastReportedTenth && tenth < 10) {
      lastReportedTenth = tenth;
      o.log(`write-image: ${tenth * 10}% (${formatBytes(received)} of ${formatBytes(o.sizeBytes)}, ${formatRate(received, seconds())})`);
    }
    if (o.onProgress && (now - lastProgressAt >= 500 || received === o.sizeBytes)) {
      lastProgressAt = now;
      o.onProgress({ bytesWritten: received, totalBytes: o.sizeBytes, bytesPerSecond: received / Math.max(seconds(), 1e-6), attempt: attempts });
    }
  };

  /**
   * One GET of the image's bytes [start, end), handed to `sink` in order (a server that
   * ignores the range has what comes before `start` skipped and what comes after `end` left
   * unread). Throws RetryableError when the connection fails or ends early: the caller resumes.
   */
  const get = async (start: number, end: number, sink: (data: Uint8Array) => Promise<void>): Promise<void> => {
    // NOTE: undici's fetch asks for gzip/br and inflates transparently; a compressed answer
    // would make Content-Length and byte ranges count compressed bytes. Ask for the bytes.
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (o.token) headers['authorization'] = `Bearer ${o.token}`;
    const asked = `${start}-${end === o.sizeBytes ? '' : end - 1}`;
    if (start > 0 || end < o.sizeBytes) {
      headers['range'] = `bytes=${asked}`;
      // A strong ETag lets the server answer 200 with the whole new image if it changed.
      if (validator?.etag && !validator.etag.startsWith('W/')) headers['if-range'] = validator.etag;
    }
    if (chunks) chunks.requests++;
    const abort = new AbortController();
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => abort.abort(new RetryableError(`no data for ${idleTimeoutMs / 1000} s`)), idleTimeoutMs);
    };
    arm();
    try {
      let res: Response;
      try {
        res = await fetchImpl(o.url, { headers, signal: abort.signal });
      } catch (e) {
        throw new RetryableError(`GET ${o.url}: ${describeFetchError(e)}`);
      }
      const status = res.status;
      if (status === 404) throw new StepError('image', `image not found: GET ${o.url} answered HTTP 404`, { url: o.url, status });
      if (status >= 500 || status === 408 || status === 429) throw new RetryableError(`GET ${o.url}: HTTP ${status}`);
      if (status === 416) {
        throw new StepError('image', `size mismatch: the controller has no byte ${start} of the image (HTTP 416); the run says it has ${o.sizeBytes} bytes`, { url: o.url, status });
      }
      if (status !== 200 && status !== 206) {
        const said = (await res.text().catch(() => '')).split('\n')[0]!.slice(0, 200);
        throw new StepError('image', `GET ${o.url}: HTTP ${status}${said ? `: ${said}` : ''}`, { url: o.url, status });
      }
      const etag = res.headers.get('etag');
      if (validator === null) validator = { etag };
      else if (validator.etag !== null && etag !== validator.etag) {
        throw new StepError('image', `the image changed on the controller while it was being written (ETag ${validator.etag}, now ${etag ?? 'none'}); ${received} bytes were written`, {
          url: o.url,
          etagBefore: validator.etag,
          etagAfter: etag,
        });
      }
      let skip = 0;
      if (status === 206) {
        const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
        if (!range || Number(range[1]) !== start) {
          throw new StepError('image', `GET ${o.url}: asked for bytes ${asked} and got Content-Range '${res.headers.get('content-range') ?? ''}'`, { url: o.url });
        }
        if (range[3] !== '*' && Number(range[3]) !== o.sizeBytes) throw sizeMismatch(o, Number(range[3]));
      } else {
        const length = res.headers.get('content-length');
        if (length !== null && Number(length) !== o.sizeBytes) throw sizeMismatch(o, Number(length));
        // The server ignored the Range header: it sends everything again; drop what is already written.
        skip = start;
        if (start > 0) o.log(`write-image: the server ignored the range request; skipping the first ${formatBytes(start)} it sends again`);
      }
      if (!res.body) throw new RetryableError(`GET ${o.url}: HTTP ${status} without a body`);
      const reader = res.body.getReader();
      let at = start;
      try {
        while (at < end || end === o.sizeBytes) {
          let chunk: Uint8Array;
          try {
            const next = await reader.read();
            if (next.done) break;
            chunk = next.value;
          } catch (e) {
            throw new RetryableError(describeFetchError(abort.signal.reason ?? e));
          }
          arm();
          if (skip > 0) {
            const dropped = Math.min(skip, chunk.length);
            skip -= dropped;
            chunk = chunk.subarray(dropped);
            if (chunk.length === 0) continue;
          }
          if (at + chunk.length > end) {
            if (end === o.sizeBytes) throw sizeMismatch(o, null);
            chunk = chunk.subarray(0, end - at);
          }
          await sink(chunk);
          at += chunk.length;
        }
      } finally {
        await reader.cancel().catch(() => undefined);
      }
      if (at < end) throw new RetryableError(`the connection ended at byte ${at} of ${end === o.sizeBytes ? o.sizeBytes : `bytes ${asked}`}`);
    } finally {
      clearTimeout(idle);
      abort.abort();
    }
  };

  /** The image's bytes [start, end) into `sink`, resuming after failures until attempts in a row bring nothing. */
  const fetchRange = async (start: number, end: number, sink: (data: Uint8Array) => Promise<void>): Promise<void> => {
    let at = start;
    let fruitless = 0;
    while (at < end) {
      attempts++;
      const before = at;
      try {
        await get(at, end, async (data) => {
          await sink(data);
          at += data.length;
        });
      } catch (e) {
        if (!(e instanceof RetryableError)) throw e;
        fruitless = at > before ? 0 : fruitless + 1;
        if (fruitless >= maxFruitless) {
          throw new StepError('network', `gave up fetching the image after ${fruitless} attempts in a row without progress, at byte ${at} of ${o.sizeBytes}: ${e.message}`, {
            url: o.url,
            bytesWritten: received,
          });
        }
        const pause = backoffMs[Math.min(fruitless, backoffMs.length - 1)] ?? 1000;
        o.log(`write-image: ${e.message}; resuming from byte ${at} (${formatBytes(at)}) in ${pause / 1000} s`);
        resumedAt.push(at);
        await sleep(pause);
      }
    }
  };

  /** The whole image in order, into the hash and the writer. */
  const streamed = async (chunk: Uint8Array): Promise<void> => {
    hash.update(chunk);
    received += chunk.length;
    bytesReceived.http += chunk.length;
    await writer.write(chunk);
    progress();
  };

  /** The multicast source's bytes into the same hash and writer; false when HTTP must finish or redo the image. */
  const receiveMulticast = async (source: ImageChunkSource): Promise<boolean> => {
    o.log(`write-image: receiving from ${source.describe}`);
    try {
      for await (const chunk of source.open()) {
        if (received + chunk.length > o.sizeBytes) throw new Error(`it sent more than the image's ${o.sizeBytes} bytes`);
        hash.update(chunk);
        received += chunk.length;
        bytesReceived.multicast += chunk.length;
        await writer.write(chunk);
        progress();
      }
      if (received < o.sizeBytes) throw new Error(`it ended at byte ${received} of ${o.sizeBytes}`);
    } catch (e) {
      if (e instanceof StepError) throw e; // the disk failed: HTTP would not help
      multicastFallback = (e as Error).message;
      o.log(`write-image: ${source.describe} stopped: ${multicastFallback}; continuing over HTTP from byte ${received}`);
      return false;
    }
    const got = hash.copy().digest('hex');
    if (got === expected) return true;
    multicastFallback = `the ${o.sizeBytes} bytes received have sha256 ${got}, not ${expected}`;
    o.log(`write-image: ${source.describe}: ${multicastFallback}; writing the image again over HTTP`);
    await writer.rewind();
    hash = createHash('sha256');
    received = 0;
    lastReportedTenth = 0;
    return false;
  };

  /** The index the run names, fetched and checked: its bytes' SHA-256, its form, and that it is this image's. */
  const fetchIndex = async (ref: NonNullable<WriteImageOptions['index']>): Promise<ChunkIndex> => {
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (ref.token) headers['authorization'] = `Bearer ${ref.token}`;
    const refuse = (why: string, details: Record<string, unknown> = {}) => new StepError('image', `chunk index ${ref.url}: ${why}`, { url: ref.url, ...details });
    let body: Buffer | null = null;
    for (let fruitless = 1; body === null; fruitless++) {
      let retry: string;
      try {
        const res = await fetchImpl(ref.url, { headers, signal: AbortSignal.timeout(idleTimeoutMs) });
        if (res.status === 200) {
          body = Buffer.from(await res.arrayBuffer());
          break;
        }
        if (res.status < 500 && res.status !== 408 && res.status !== 429) throw refuse(`HTTP ${res.status}`, { status: res.status });
        retry = `HTTP ${res.status}`;
      } catch (e) {
        if (e instanceof StepError) throw e;
        retry = describeFetchError(e);
      }
      if (fruitless >= maxFruitless) throw new StepError('network', `gave up fetching the chunk index ${ref.url} after ${fruitless} attempts: ${retry}`, { url: ref.url });
      const pause = backoffMs[Math.min(fruitless, backoffMs.length - 1)] ?? 1000;
      o.log(`write-image: chunk index: ${retry}; again in ${pause / 1000} s`);
      await sleep(pause);
    }
    const got = createHash('sha256').update(body).digest('hex');
    if (got !== ref.sha256.toLowerCase()) throw refuse(`its sha256 is ${got}, not the ${ref.sha256} the run names`, { expected: ref.sha256, actual: got });
    let index: unknown;
    try {
      index = JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw refuse(`not JSON: ${(e as Error).message}`);
    }
    const problem = Value.Errors(ChunkIndexSchema, index)[0];
    if (problem) throw refuse(`${problem.instancePath || '/'} ${problem.message}`);
    const wrong = chunkIndexProblem(index as ChunkIndex, { sha256: expected, sizeBytes: o.sizeBytes });
    if (wrong) throw refuse(wrong);
    return index as ChunkIndex;
  };

  /** The image chunk by chunk from its index (see the module comment). */
  const writeChunked = async (ref: NonNullable<WriteImageOptions['index']>): Promise<void> => {
    const index = await fetchIndex(ref);
    const stats: ChunkedWrite = { chunkBytes: index.chunkBytes, fetchedBytes: 0, zeroFilledBytes: 0, keptBytes: 0, repairedChunks: [], requests: 0, differential };
    chunks = stats;
    const count = index.chunks.length;
    /** What each chunk needs: nothing (the disk holds it), zeros written here, or fetching. */
    const plan: ('keep' | 'zero' | 'fetch')[] = index.chunks.map((c) => (c.zero ? 'zero' : 'fetch'));
    if (differential) {
      const pending: Promise<void>[] = [];
      for (let i = 0; i < count; i++) {
        const { start, end } = chunkRange(index, i);
        const buf = await readDisk(fh, disk, Buffer.allocUnsafe(end - start), start);
        const entry = index.chunks[i]!;
        const keep = () => {
          plan[i] = 'keep';
          stats.keptBytes += buf.length;
          received += buf.length;
          progress();
        };
        if (entry.zero) {
          if (isAllZero(buf)) keep();
          continue;
        }
        pending.push(sha256Of(buf).then((digest) => (digest === entry.sha256 ? keep() : undefined)));
        if (pending.length >= CHUNKS_IN_FLIGHT) await pending.shift();
      }
      await Promise.all(pending);
      o.log(`write-image: the disk holds ${formatBytes(stats.keptBytes)} of the image already (${plan.filter((p) => p === 'keep').length} of ${count} chunks)`);
    }
    // Short runs of zero chunks between chunks to fetch are fetched with them: fewer requests.
    const gapChunks = Math.floor((o.mergeGapBytes ?? MiB) / index.chunkBytes);
    for (let i = 0; i < count; ) {
      if (plan[i] !== 'zero') {
        i++;
        continue;
      }
      let end = i;
      while (end < count && plan[end] === 'zero') end++;
      if (i > 0 && plan[i - 1] === 'fetch' && end < count && plan[end] === 'fetch' && end - i <= gapChunks) plan.fill('fetch', i, end);
      i = end;
    }

    // Zero chunks are written here while the others are fetched.
    let stop = false;
    const zeros = Buffer.alloc(index.chunkBytes);
    const zeroFill = (async () => {
      for (let i = 0; i < count && !stop; i++) {
        if (plan[i] !== 'zero') continue;
        const { start, end } = chunkRange(index, i);
        await writer.writeAt(zeros.subarray(0, end - start), start);
        stats.zeroFilledBytes += end - start;
        received += end - start;
        progress();
      }
    })();
    zeroFill.catch(() => undefined);

    /** Chunks whose bytes did not match their entry; fetched again once the runs are done. */
    const mismatched: number[] = [];
    const inFlight: Promise<void>[] = [];
    const verifyAndWrite = async (i: number, buf: Buffer): Promise<boolean> => {
      if ((await sha256Of(buf)) !== index.chunks[i]!.sha256) return false;
      await writer.writeAt(buf, chunkRange(index, i).start);
      received += buf.length;
      progress();
      return true;
    };
    /** Gathers a run's bytes into chunks; each full one is verified and written while the next arrives. */
    const chunker = (first: number) => {
      let i = first;
      let buf: Buffer | null = null;
      let fill = 0;
      return async (data: Uint8Array) => {
        stats.fetchedBytes += data.length;
        bytesReceived.http += data.length;
        for (let from = 0; from < data.length; ) {
          const { start, end } = chunkRange(index, i);
          buf ??= Buffer.allocUnsafe(end - start);
          const n = Math.min(data.length - from, buf.length - fill);
          buf.set(data.subarray(from, from + n), fill);
          fill += n;
          from += n;
          if (fill < buf.length) continue;
          const chunk = i;
          const done = verifyAndWrite(chunk, buf).then((ok) => (ok ? undefined : void mismatched.push(chunk)));
          done.catch(() => undefined);
          inFlight.push(done);
          if (inFlight.length >= CHUNKS_IN_FLIGHT) await inFlight.shift();
          i++;
          buf = null;
          fill = 0;
        }
      };
    };
    try {
      for (let i = 0; i < count; ) {
        if (plan[i] !== 'fetch') {
          i++;
          continue;
        }
        let last = i;
        while (last + 1 < count && plan[last + 1] === 'fetch') last++;
        await fetchRange(chunkRange(index, i).start, chunkRange(index, last).end, chunker(i));
        i = last + 1;
      }
      while (inFlight.length > 0) await inFlight.shift();
      for (const i of mismatched.sort((a, b) => a - b)) {
        const { start, end } = chunkRange(index, i);
        o.log(`write-image: chunk ${i} (bytes ${start}-${end - 1}) did not match the index; fetching it again`);
        const buf = Buffer.allocUnsafe(end - start);
        let fill = 0;
        await fetchRange(start, end, async (data) => {
          stats.fetchedBytes += data.length;
          bytesReceived.http += data.length;
          buf.set(data, fill);
          fill += data.length;
        });
        if (!(await verifyAndWrite(i, buf))) {
          throw new StepError('image', `checksum mismatch: chunk ${i} of ${o.url} (bytes ${start}-${end - 1}) does not match the image's chunk index, fetched twice`, {
            url: o.url,
            chunk: i,
            expected: index.chunks[i]!.sha256,
          });
        }
        stats.repairedChunks.push(i);
      }
    } catch (e) {
      stop = true;
      await zeroFill.catch(() => undefined);
      await Promise.allSettled(inFlight);
      throw e;
    }
    await zeroFill;
  };

  try {
    if (chunkedRef) {
      o.log(`write-image: ${o.url} (${formatBytes(o.sizeBytes)}) → ${disk.path} (${formatBytes(disk.sizeBytes)}) by chunks${differential ? ', keeping those the disk holds' : ''}`);
      await writeChunked(chunkedRef);
    } else {
      o.log(`write-image: ${o.url} (${formatBytes(o.sizeBytes)}) → ${disk.path} (${formatBytes(disk.sizeBytes)})`);
      if (o.multicast) await receiveMulticast(o.multicast);
      if (received < o.sizeBytes) await fetchRange(received, o.sizeBytes, streamed);
    }
    await writer.finish();
  } catch (e) {
    const scrubbed = await scrubPartialImage(writer, disk, o.sizeBytes);
    const error =
      e instanceof StepError ? e : new StepError('disk', `${disk.name}: ${(e as Error).message}`, { disk: disk.name }, { cause: e });
    o.log(`write-image: failed: ${error.message}${scrubbed.length > 0 ? `; ${scrubbed}` : ''}`);
    await fh.close().catch(() => undefined);
    throw error;
  }

  // With an index every chunk was checked against it, and the index names the image's checksum.
  const actual = chunks ? expected : hash.digest('hex');
  if (actual !== expected) {
    const scrubbed = await scrubPartialImage(writer, disk, o.sizeBytes);
    await fh.close().catch(() => undefined);
    throw new StepError('image', `checksum mismatch: expected sha256 ${expected}, got ${actual} for the ${o.sizeBytes} bytes of ${o.url}; ${scrubbed}`, {
      url: o.url,
      expected,
      actual,
    });
  }
  await fh.close();
  const took = seconds();
  // What the index found right on the disk after the session is what the session delivered
  // (a session that stopped part-way delivered what it wrote before).
  if (o.diskReceiver && chunks) bytesReceived.multicast = chunks.keptBytes;
  const viaMulticast = Boolean(o.multicast ?? o.diskReceiver);
  const transport: ImageTransport = bytesReceived.http === 0 && viaMulticast ? 'multicast' : 'http';
  const by = viaMulticast ? ` by ${transport} (multicast ${bytesReceived.multicast} bytes, HTTP ${bytesReceived.http} bytes)` : '';
  const how = chunks
    ? `${o.diskReceiver ? by : ''}: fetched ${formatBytes(chunks.fetchedBytes)} in ${chunks.requests} request(s), zero-filled ${formatBytes(chunks.zeroFilledBytes)}${chunks.differential ? `, kept ${formatBytes(chunks.keptBytes)} the disk held` : ''}${chunks.repairedChunks.length ? `, ${chunks.repairedChunks.length} chunk(s) fetched again` : ''}; every chunk verified against the index of sha256 ${actual}`
    : `${by}, sha256 ${actual} verified`;
  o.log(`write-image: wrote ${formatBytes(o.sizeBytes)} to ${disk.path} in ${took.toFixed(1)} s (${formatRate(o.sizeBytes, took)})${how}${resumedAt.length > 0 ? `, resumed ${resumedAt.length} time(s)` : ''}`);
  return {
    device: disk.path,
    bytes: o.sizeBytes,
    sha256: actual,
    seconds: took,
    bytesPerSecond: o.sizeBytes / took,
    attempts,
    resumedAt,
    transport,
    bytesReceived,
    ...(multicastFallback !== undefined ? { multicastFallback } : {}),
    ...(chunks ? { chunks } : {}),
  };
}

/** Hex SHA-256 computed in the thread pool (WebCrypto), off the thread that receives and writes. */
async function sha256Of(buf: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', buf)).toString('hex');
}

/** Fills `buf` from the disk at `position`. */
async function readDisk(fh: FileHandle, disk: BlockDevice, buf: Buffer, position: number): Promise<Buffer> {
  let done = 0;
  try {
    while (done < buf.length) {
      const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
      if (bytesRead <= 0) throw new Error('end of device');
      done += bytesRead;
    }
  } catch (e) {
    throw new StepError('disk', `${disk.name}: read failed at byte ${position + done}: ${(e as Error).message}`, { disk: disk.name, offset: position + done });
  }
  return buf;
}

function sizeMismatch(o: WriteImageOptions, served: number | null): StepError {
  const what = served === null ? 'sent more bytes than that' : `serves ${served} bytes`;
  return new StepError('image', `size mismatch: the run says the image has ${o.sizeBytes} bytes; the controller ${what}`, { url: o.url, expected: o.sizeBytes, served });
}

/** fetch failures are a TypeError "fetch failed" whose cause says what happened. */
function describeFetchError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
  return `${e.message}${cause}`;
}

/**
 * Zeroes the places firmware looks for something to boot (see the module comment) and
 * says what it did, for the failure message.
 */
async function scrubPartialImage(writer: DeviceWriter, disk: BlockDevice, imageBytes: number): Promise<string> {
  await writer.settle();
  if (!writer.touched) return 'the disk was not written to';
  const ranges = [
    [0, Math.min(SCRUB_BYTES, disk.sizeBytes)],
    [Math.max(0, imageBytes - SCRUB_BYTES), Math.min(SCRUB_BYTES, imageBytes)],
    [Math.max(0, disk.sizeBytes - SCRUB_BYTES), Math.min(SCRUB_BYTES, disk.sizeBytes)],
  ] as const;
  try {
    for (const [start, length] of ranges) await writer.zero(start, length);
    await writer.sync();
    return `the first MiB of ${disk.name} (and the last MiB of the image and of the disk) were zeroed so that it does not boot a partial image`;
  } catch (e) {
    return `zeroing the start of ${disk.name} failed too (${(e as Error).message}): it may hold a partial image`;
  }
}

/**
 * Buffers the stream into large writes and keeps one write in flight while the next
 * buffer fills. Write failures become StepErrors (disk) naming the offset.
 */
class DeviceWriter {
  private current: Buffer;
  private spare: Buffer;
  private fill = 0;
  /** Device offset of current[0]. */
  private position = 0;
  private inflight: Promise<void> | null = null;
  touched = false;

  constructor(
    private readonly fh: FileHandle,
    private readonly disk: BlockDevice,
    bufferBytes: number,
  ) {
    this.current = Buffer.allocUnsafe(bufferBytes);
    this.spare = Buffer.allocUnsafe(bufferBytes);
  }

  async write(chunk: Uint8Array): Promise<void> {
    let from = 0;
    while (from < chunk.length) {
      const n = Math.min(chunk.length - from, this.current.length - this.fill);
      this.current.set(chunk.subarray(from, from + n), this.fill);
      this.fill += n;
      from += n;
      if (this.fill === this.current.length) await this.submit();
    }
  }

  /** Hands the full buffer to the device and continues in the spare one. */
  private async submit(): Promise<void> {
    if (this.inflight) await this.inflight;
    const buffer = this.current;
    const length = this.fill;
    const position = this.position;
    this.touched = true;
    const write = this.writeAll(buffer, length, position);
    // Awaited on the next submit or flush; the catch only keeps Node from calling it unhandled meanwhile.
    write.catch(() => undefined);
    this.inflight = write;
    this.current = this.spare;
    this.spare = buffer;
    this.position += length;
    this.fill = 0;
  }

  /** Writes `buffer` at `position` now, outside the stream's buffers (chunks written by their index). */
  async writeAt(buffer: Buffer, position: number): Promise<void> {
    this.touched = true;
    await this.writeAll(buffer, buffer.length, position);
  }

  private async writeAll(buffer: Buffer, length: number, position: number): Promise<void> {
    let done = 0;
    try {
      while (done < length) {
        const { bytesWritten } = await this.fh.write(buffer, done, length - done, position + done);
        if (bytesWritten <= 0) throw new Error('the device accepted no bytes');
        done += bytesWritten;
      }
    } catch (e) {
      throw new StepError('disk', `${this.disk.name}: write failed at byte ${position + done}: ${(e as Error).message}`, { disk: this.disk.name, offset: position + done });
    }
  }

  async finish(): Promise<void> {
    if (this.fill > 0) await this.submit();
    if (this.inflight) await this.inflight;
    this.inflight = null;
    await this.sync();
  }

  async sync(): Promise<void> {
    try {
      await this.fh.sync();
    } catch (e) {
      throw new StepError('disk', `${this.disk.name}: fsync failed: ${(e as Error).message}`, { disk: this.disk.name });
    }
  }

  /** Drops what is buffered and starts again at offset 0 (a whole image written again). */
  async rewind(): Promise<void> {
    if (this.inflight) await this.inflight;
    this.inflight = null;
    this.fill = 0;
    this.position = 0;
  }

  /** Waits for the write in flight, whatever its outcome (before scrubbing). */
  async settle(): Promise<void> {
    await this.inflight?.catch(() => undefined);
    this.inflight = null;
  }

  async zero(start: number, length: number): Promise<void> {
    if (length <= 0) return;
    this.touched = true;
    await this.writeAll(Buffer.alloc(length), length, start);
  }
}
