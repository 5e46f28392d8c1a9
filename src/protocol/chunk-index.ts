import { createHash } from 'node:crypto';
import { Type, type Static } from 'typebox';

/**
 * An image's chunk index: the raw image cut in fixed-size chunks, each with its SHA-256 and
 * whether it is all zeros. The controller computes it once per image file (in the same pass
 * that hashes an upload or a build) and keeps it as a plain JSON file next to the image; the
 * run parameters carry the index's own SHA-256, so the agent trusts it as it trusts the
 * image's checksum. With it the agent writes zero chunks without fetching them, fetches the
 * other chunks with Range requests, verifies each one as it arrives, and on a redeploy skips
 * the chunks the disk already holds (docs/mass-deploy.md, docs/decisions.md).
 */

/** The chunk size the controller cuts images in. */
export const CHUNK_BYTES = 256 * 1024;
export const CHUNK_INDEX_FORMAT = 'plinth-chunk-index';

/** Lower-case hex, as the controller writes it. */
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });

export const ChunkSchema = Type.Object(
  {
    sha256: Sha256,
    /** Every byte of the chunk is 0: the agent writes (or checks) zeros instead of fetching it. */
    zero: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type Chunk = Static<typeof ChunkSchema>;

export const ChunkIndexSchema = Type.Object(
  {
    format: Type.Literal(CHUNK_INDEX_FORMAT),
    version: Type.Literal(1),
    /** The whole image's SHA-256 and size: an index belongs to one version of one image. */
    imageSha256: Sha256,
    sizeBytes: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    /** Every chunk has this many bytes but the last, which has what is left. A power of two, 64 KiB to 64 MiB. */
    chunkBytes: Type.Integer({ minimum: 64 * 1024, maximum: 64 * 1024 * 1024 }),
    chunks: Type.Array(ChunkSchema, { maxItems: 16 * 1024 * 1024 }),
  },
  { additionalProperties: false },
);
export type ChunkIndex = Static<typeof ChunkIndexSchema>;

/** Where to fetch an image's index and what its bytes hash to (in the deploy parameters). */
export const ChunkIndexRefSchema = Type.Object(
  {
    /** Absolute, or relative to the controller URL, like the image's. */
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    /** Hex SHA-256 of the index file's bytes. */
    sha256: Sha256,
  },
  { additionalProperties: false },
);
export type ChunkIndexRef = Static<typeof ChunkIndexRefSchema>;

/** Chunk `i`'s byte range [start, end) in the image. */
export function chunkRange(index: Pick<ChunkIndex, 'chunkBytes' | 'sizeBytes'>, i: number): { start: number; end: number } {
  const start = i * index.chunkBytes;
  return { start, end: Math.min(start + index.chunkBytes, index.sizeBytes) };
}

/**
 * What is wrong with an index (already of the schema's shape) for this image, or null: another
 * image, a chunk size that is not a power of two, a chunk count that does not cover the image.
 */
export function chunkIndexProblem(index: ChunkIndex, image: { sha256: string; sizeBytes: number }): string | null {
  if (index.imageSha256.toLowerCase() !== image.sha256.toLowerCase()) return `it indexes image sha256 ${index.imageSha256}, not ${image.sha256}`;
  if (index.sizeBytes !== image.sizeBytes) return `it indexes ${index.sizeBytes} bytes, not the image's ${image.sizeBytes}`;
  if ((index.chunkBytes & (index.chunkBytes - 1)) !== 0) return `its chunk size ${index.chunkBytes} is not a power of two`;
  const expected = Math.ceil(index.sizeBytes / index.chunkBytes);
  if (index.chunks.length !== expected) return `it has ${index.chunks.length} chunks; ${index.sizeBytes} bytes in chunks of ${index.chunkBytes} make ${expected}`;
  return null;
}

/** True when every byte is 0 (compared a page at a time against zeros, no hashing). */
export function isAllZero(buf: Uint8Array): boolean {
  const step = ZERO_PAGE.length;
  for (let at = 0; at < buf.length; at += step) {
    const n = Math.min(step, buf.length - at);
    if (Buffer.compare(buf.subarray(at, at + n), ZERO_PAGE.subarray(0, n)) !== 0) return false;
  }
  return true;
}
const ZERO_PAGE = Buffer.alloc(64 * 1024);

/**
 * Builds an index from the image's bytes as they stream past (in buffers of any size): the
 * whole image's SHA-256 and each chunk's, in one pass.
 */
export class ChunkIndexer {
  private readonly whole = createHash('sha256');
  private chunk = createHash('sha256');
  private inChunk = 0;
  private chunkZero = true;
  private size = 0;
  private readonly chunks: Chunk[] = [];

  constructor(private readonly chunkBytes = CHUNK_BYTES) {}

  update(data: Uint8Array): void {
    this.whole.update(data);
    this.size += data.length;
    let from = 0;
    while (from < data.length) {
      const n = Math.min(data.length - from, this.chunkBytes - this.inChunk);
      const part = data.subarray(from, from + n);
      this.chunk.update(part);
      if (this.chunkZero && !isAllZero(part)) this.chunkZero = false;
      this.inChunk += n;
      from += n;
      if (this.inChunk === this.chunkBytes) this.endChunk();
    }
  }

  private endChunk(): void {
    this.chunks.push({ sha256: this.chunk.digest('hex'), zero: this.chunkZero });
    this.chunk = createHash('sha256');
    this.inChunk = 0;
    this.chunkZero = true;
  }

  /** The index of everything seen (call once). */
  finish(): ChunkIndex {
    if (this.inChunk > 0) this.endChunk();
    return { format: CHUNK_INDEX_FORMAT, version: 1, imageSha256: this.whole.digest('hex'), sizeBytes: this.size, chunkBytes: this.chunkBytes, chunks: this.chunks };
  }
}
