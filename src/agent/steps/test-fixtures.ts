/**
 * Test support for the steps: loop devices over sparse files (and nothing else: every
 * destructive helper refuses a device it did not attach), a small GPT test image like the
 * ones `plinth image build` makes, and an HTTP server that serves it with ranges and can
 * misbehave on purpose. Test support only; nothing in the agent imports it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, promises as fsp, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MiB = 1024 * 1024;

export interface Sh {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a tool and resolves with how it ended (never rejects on a non-zero exit). */
export function sh(command: string, args: string[]): Promise<Sh> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { encoding: 'utf8', maxBuffer: 64 * MiB, env: { ...process.env, LC_ALL: 'C' } }, (error, stdout, stderr) => {
      const err = error as (Error & { code?: unknown }) | null;
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ stdout, stderr, code: err ? (err.code as number) : 0 });
    }),
  );
}

/** Runs a tool that must succeed; its stdout. */
export async function must(command: string, args: string[]): Promise<string> {
  const r = await sh(command, args);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Loop devices this test attached; detachAll() is for afterAll and never throws. */
export class LoopDevices {
  readonly dir = mkdtempSync(join(tmpdir(), 'plinth-steps-'));
  private readonly attached = new Map<string, string>();
  private files = 0;

  /** A new loop device over a sparse file of `sizeBytes` (filled from `content` when given). */
  async attach(sizeBytes: number, content?: string): Promise<{ device: string; name: string; file: string }> {
    const file = join(this.dir, `disk-${this.files++}.img`);
    if (content) await must('cp', ['--sparse=always', content, file]);
    const fd = openSync(file, content ? 'r+' : 'w');
    ftruncateSync(fd, sizeBytes);
    closeSync(fd);
    const device = (await must('losetup', ['--find', '--show', '--partscan', file])).trim();
    if (!/^\/dev\/loop\d+$/.test(device)) throw new Error(`losetup printed '${device}'`);
    this.attached.set(device, file);
    return { device, name: device.slice('/dev/'.length), file };
  }

  /** Throws unless `device` is a loop device this object attached. */
  assertOurs(device: string): void {
    if (!/^\/dev\/loop\d+$/.test(device) || !this.attached.has(device)) throw new Error(`refusing to touch ${device}: not a loop device this test attached`);
  }

  backingFile(device: string): string {
    this.assertOurs(device);
    return this.attached.get(device)!;
  }

  /** Detaches one device now; its backing file stays (the caller may keep it). */
  async detach(device: string): Promise<string> {
    this.assertOurs(device);
    for (const mountpoint of mountpointsOf(device)) await sh('umount', ['-l', mountpoint]);
    await must('losetup', ['--detach', device]);
    const file = this.attached.get(device)!;
    this.attached.delete(device);
    return file;
  }

  async detachAll(): Promise<void> {
    for (const device of this.attached.keys()) {
      for (const mountpoint of mountpointsOf(device)) await sh('umount', ['-l', mountpoint]).catch(() => undefined);
      await sh('losetup', ['--detach', device]).catch(() => undefined);
    }
    this.attached.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Where anything on `device` (or its partitions) is mounted. */
export function mountpointsOf(device: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter(([source]) => source === device || (source !== undefined && new RegExp(`^${device}p\\d+$`).test(source)))
    .map((f) => f[1]!);
}

/** Reads bytes from a device the test owns, bypassing the kernel's cached pages. */
export async function readDevice(loops: LoopDevices, device: string, start: number, length: number): Promise<Buffer> {
  loops.assertOurs(device);
  await must('blockdev', ['--flushbufs', device]);
  const fh = await fsp.open(device, 'r');
  try {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, start + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return buf.subarray(0, done);
  } finally {
    await fh.close();
  }
}

const ZEROS = Buffer.alloc(4 * MiB);

/** True when every byte is zero (memcmp against zeros: a byte-by-byte loop takes seconds on 64 MiB). */
export function isZero(buf: Buffer): boolean {
  for (let at = 0; at < buf.length; at += ZEROS.length) {
    const part = buf.subarray(at, at + ZEROS.length);
    if (!part.equals(ZEROS.subarray(0, part.length))) return false;
  }
  return true;
}

export interface TestImage {
  path: string;
  sizeBytes: number;
  sha256: string;
  /** Files in the root filesystem: path → content. */
  files: Record<string, string>;
}

export const ROOT_FILES: Record<string, string> = {
  'hello.txt': 'hello from the test image\n',
  'etc/hostname': 'test-image\n',
  'etc/os-release': 'NAME="Plinth test image"\n',
  // As `plinth image build` leaves them: kernel arguments go into both.
  'etc/default/grub': 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX_DEFAULT=""\nGRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"\n',
  'boot/grub/grub.cfg':
    "menuentry 'Debian GNU/Linux' {\n\tsearch --no-floppy --fs-uuid --set=root 0000\n\tlinux\t/boot/vmlinuz-6.1.0-30-amd64 root=UUID=0000 ro console=tty0 console=ttyS0,115200n8\n\tinitrd\t/boot/initrd.img-6.1.0-30-amd64\n}\n",
};

/**
 * The layout `plinth image build` makes, small: GPT with BIOS boot (1 MiB), ESP (8 MiB,
 * vfat "ESP") and an ext4 root labelled plinth-root filling the rest, holding ROOT_FILES.
 */
export async function buildTestImage(loops: LoopDevices, sizeBytes = 32 * MiB): Promise<TestImage> {
  const stamp = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const path = join(loops.dir, `image-${stamp}.raw`);
  const staging = join(loops.dir, `root-${stamp}`);
  for (const [file, content] of Object.entries(ROOT_FILES)) {
    mkdirSync(join(staging, file, '..'), { recursive: true });
    writeFileSync(join(staging, file), content);
  }
  const fd = openSync(path, 'w');
  ftruncateSync(fd, sizeBytes);
  closeSync(fd);
  await must('sgdisk', [
    '--set-alignment=2048',
    '--new=1:2048:+1M', '--typecode=1:EF02', '--change-name=1:bios-boot',
    '--new=2:0:+8M', '--typecode=2:EF00', '--change-name=2:efi-system',
    '--new=3:0:0', '--typecode=3:8304', '--change-name=3:root',
    path,
  ]);
  const { device } = await loops.attach(sizeBytes, path);
  await settlePartitions(device, 3);
  await must('mkfs.vfat', ['-n', 'ESP', `${device}p2`]);
  await must('mkfs.ext4', ['-q', '-F', '-L', 'plinth-root', '-d', staging, `${device}p3`]);
  await must('blockdev', ['--flushbufs', device]);
  const backing = await loops.detach(device);
  rmSync(staging, { recursive: true, force: true });
  await fsp.rename(backing, path);
  return { path, sizeBytes, sha256: createHash('sha256').update(readFileSync(path)).digest('hex'), files: ROOT_FILES };
}

/** Waits for partition nodes; partx adds them where --partscan did not. */
export async function settlePartitions(device: string, count: number): Promise<void> {
  const nodes = Array.from({ length: count }, (_, i) => `${device}p${i + 1}`);
  const exists = () => nodes.every((n) => { try { return readFileSync(`/sys/class/block/${n.slice(5)}/partition`, 'utf8') !== ''; } catch { return false; } });
  if (!exists()) await sh('partx', ['--update', device]);
  for (let i = 0; i < 100 && !exists(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!exists()) throw new Error(`partitions of ${device} did not appear`);
}

/** Copies a file onto a device the test owns (for tests that need an image on disk without writeImage). */
export async function copyOnto(loops: LoopDevices, file: string, device: string): Promise<void> {
  loops.assertOurs(device);
  await must('dd', [`if=${file}`, `of=${device}`, 'bs=4M', 'conv=fsync', 'status=none']);
}

export interface ServedRequest {
  method: string;
  range: string | undefined;
  ifRange: string | undefined;
  authorization: string | undefined;
  acceptEncoding: string | undefined;
}

export interface ImageServerOptions {
  /** Per request (by index): cut the connection after this many body bytes. */
  cutAfter?: (index: number) => number | null;
  /** Per request: the ETag to send. Default: one fixed strong ETag. */
  etag?: (index: number) => string | null;
  /** Per request: answer with this status and no image. */
  status?: (index: number) => number | null;
  /** Ignore Range headers (answer 200 with everything). */
  ignoreRange?: boolean;
  /** Pretend the image is this long in Content-Length. */
  contentLength?: number;
  /** Per request: flip the byte at this image offset in what is sent (when the answer covers it). */
  corrupt?: (index: number) => number | null;
  /** Other files, served at /NAME (not counted in `requests`). */
  files?: Record<string, Buffer>;
}

/** Serves one file at /image.raw with Range support; the requests it saw are in `requests`. */
export async function serveImage(file: string, options: ImageServerOptions = {}): Promise<{ url: string; origin: string; requests: ServedRequest[]; close(): Promise<void> }> {
  const data = readFileSync(file);
  const requests: ServedRequest[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const other = options.files?.[(req.url ?? '').slice(1)];
    if (other) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': other.length }).end(other);
      return;
    }
    const index = requests.length;
    requests.push({
      method: req.method ?? '',
      range: req.headers.range,
      ifRange: req.headers['if-range'] as string | undefined,
      authorization: req.headers.authorization,
      acceptEncoding: req.headers['accept-encoding'],
    });
    const status = options.status?.(index) ?? null;
    if (status !== null) {
      res.writeHead(status, { 'content-type': 'text/plain' }).end(`status ${status}\n`);
      return;
    }
    const etag = options.etag ? options.etag(index) : '"image-v1"';
    const headers: Record<string, string | number> = { 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    if (etag) headers['etag'] = etag;
    let start = 0;
    let end = data.length;
    let code = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (range && !options.ignoreRange && (ifRange === undefined || ifRange === etag)) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(end, Number(range[2]) + 1);
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
        return;
      }
      code = 206;
      headers['content-range'] = `bytes ${start}-${end - 1}/${data.length}`;
    }
    let body = data.subarray(start, end);
    const flip = options.corrupt?.(index) ?? null;
    if (flip !== null && flip >= start && flip < end) {
      body = Buffer.from(body);
      body[flip - start] = body[flip - start]! ^ 0xff;
    }
    headers['content-length'] = code === 200 && options.contentLength !== undefined ? options.contentLength : body.length;
    res.writeHead(code, headers);
    const cut = options.cutAfter?.(index) ?? null;
    if (cut !== null && cut < body.length) {
      res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/image.raw`,
    origin,
    requests,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/**
 * A TCP proxy in front of an HTTP server that counts the bytes the server sent through it:
 * what crossed the network, headers included, whatever the client says it fetched.
 */
export async function countingProxy(target: string): Promise<{ url: string; sent: () => number; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  let sent = 0;
  const sockets = new Set<Socket>();
  const server = createTcpServer((client) => {
    const upstream = connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    upstream.on('data', (d: Buffer) => {
      sent += d.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sent: () => sent,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
