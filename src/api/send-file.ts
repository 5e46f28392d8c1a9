import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { FastifyReply } from 'fastify';

/** Sends a large file (kernel, initramfs, disk image) as the answer to a request. */
export type SendFile = (reply: FastifyReply, path: string) => FastifyReply;

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
  return (reply, path) => {
    const abs = resolve(path);
    const rel = relative(root, abs);
    if (opts.accelRedirect && rel && !rel.startsWith('..') && !isAbsolute(rel)) {
      return reply.header('x-accel-redirect', prefix + rel.split(sep).map(encodeURIComponent).join('/')).send();
    }
    // Large reads: fewer, bigger writes to the socket (measured: see bench/results/*-boot-storm.md).
    return reply.sendFile(basename(abs), dirname(abs), { highWaterMark: 1024 * 1024 } as object);
  };
}
