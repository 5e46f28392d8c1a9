import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { FastifyReply } from 'fastify';

/** Sends a large file (kernel, initramfs, disk image) as the answer to a request. */
export type SendFile = (reply: FastifyReply, path: string) => FastifyReply;

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Read sizes of downloads. A stream holds about two reads (one being written to its socket,
 * one read ahead), so memory is downloads × 2 × read size. Large reads (1 MiB: fewer, larger
 * writes to the socket) go to downloads while their buffers fit in `budget`; downloads that
 * start beyond it read 32 KiB at a time. A thousand at once then hold about
 * budget + 1000 × 64 KiB, not 2 GiB. Measured in bench/results/*-serving.md.
 */
export class ReadSizes {
  static readonly LARGE = MiB;
  static readonly SMALL = 32 * KiB;
  private large = 0;

  constructor(private readonly budget = 32 * MiB) {}

  /** The read size of a download that starts now; hand it back to `give` when it ends. */
  take(): number {
    if ((this.large + 1) * 2 * ReadSizes.LARGE > this.budget) return ReadSizes.SMALL;
    this.large++;
    return ReadSizes.LARGE;
  }

  give(size: number): void {
    if (size === ReadSizes.LARGE) this.large--;
  }
}

/**
 * Streams files itself (Range, ETag, Content-Length from @fastify/static) — or, with
 * `accelRedirect` set, answers with an `X-Accel-Redirect` to that internal location of a
 * front nginx that serves the data directory: the controller still authorises and traces
 * every request, and nginx sends the bytes with sendfile. Files outside the data directory
 * are always streamed by the controller.
 */
export function fileSender(opts: { dataDir: string; accelRedirect: string }): SendFile {
  const root = resolve(opts.dataDir);
  const prefix = opts.accelRedirect.endsWith('/') ? opts.accelRedirect : `${opts.accelRedirect}/`;
  const sizes = new ReadSizes();
  return (reply, path) => {
    const abs = resolve(path);
    const rel = relative(root, abs);
    if (opts.accelRedirect && rel && !rel.startsWith('..') && !isAbsolute(rel)) {
      return reply.header('x-accel-redirect', prefix + rel.split(sep).map(encodeURIComponent).join('/')).send();
    }
    const size = sizes.take();
    reply.raw.once('close', () => sizes.give(size));
    return reply.sendFile(basename(abs), dirname(abs), { highWaterMark: size } as object);
  };
}
