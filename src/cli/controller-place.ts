import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { UsageError } from './errors.js';
import { Progress } from './progress.js';
import { sendStream } from './upload.js';
import { readDataDirId } from '../config/data-dir.js';
import { PlinthError } from '../core/errors.js';

/** What `GET /api/v1/controller` answers (api/routes/installer.ts). */
export interface ControllerView {
  id: string;
  version: string;
  database: 'sqlite' | 'postgres';
  dataDir: { path: string; id: string };
}

/**
 * Where a build's result must go, decided before the build starts:
 * - `local`: write into `dataDir` (the controller's own directory, seen from this host, or no
 *   controller answers and none was named: the first build before `plinth serve`);
 * - `remote`: the controller keeps its data elsewhere; build into `dataDir` here, then upload.
 */
export type BuildPlace =
  | { kind: 'local'; dataDir: string; controller: ControllerView | null }
  | { kind: 'remote'; dataDir: string; controller: ControllerView; url: string };

/**
 * Asks the controller where its data directory is and whether this host sees that very
 * directory (the same id at the same path). A controller named by --url or PLINTH_URL that
 * does not answer is an error now, not after a long build.
 */
export async function buildPlace(ctx: CliContext, cmd: Command, dataDirFlag: string | undefined): Promise<BuildPlace> {
  const named = cmd.optsWithGlobals<{ url?: string }>().url ?? ctx.env.PLINTH_URL;
  const localDir = resolve(dataDirFlag ?? ctx.env.PLINTH_DATA_DIR ?? './var');
  let controller: ControllerView;
  try {
    controller = await ctx.client().request<ControllerView>('GET', '/api/v1/controller');
  } catch (e) {
    // No controller named, and none (or none that knows this CLI's token) answers at the
    // default address: the build goes where it always did.
    if (!named && e instanceof PlinthError && (e.code === 'unavailable' || e.code === 'unauthorized')) return { kind: 'local', dataDir: localDir, controller: null };
    throw e;
  }
  const seen = readDataDirId(controller.dataDir.path) === controller.dataDir.id;
  if (seen && (dataDirFlag === undefined || resolve(dataDirFlag) === controller.dataDir.path)) return { kind: 'local', dataDir: controller.dataDir.path, controller };
  return { kind: 'remote', dataDir: localDir, controller, url: ctx.client().url };
}

/** Refuses early when the token could not upload the result (uploads need admin). */
export async function requireAdmin(ctx: CliContext, what: string): Promise<void> {
  const me = await ctx.client().whoami();
  if (me.role !== 'admin') {
    throw new UsageError(`${what}: uploading to ${ctx.client().url} needs an admin token; '${me.name}' is ${me.role} (give one with --token or PLINTH_TOKEN)`);
  }
}

/**
 * Streams a file to the controller with its SHA-256 (checked there; a mismatch keeps
 * nothing), with a progress bar on a terminal (one line per tenth otherwise).
 */
export async function uploadFile<T>(ctx: CliContext, path: string, url: (sha256: string) => string, label: string, method: 'PUT' | 'POST' = 'PUT'): Promise<T> {
  const total = statSync(path).size;
  const hash = createHash('sha256');
  const checking = new Progress(`checksum ${label}`, total);
  let seen = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 2 ** 20 })) {
    hash.update(chunk as Buffer);
    checking.update((seen += (chunk as Buffer).length));
  }
  checking.done();
  const sha256 = hash.digest('hex');
  const progress = new Progress(`upload   ${label}`, total);
  let sent = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      progress.update((sent += chunk.length));
      cb(null, chunk);
    },
  });
  const body = Readable.toWeb(createReadStream(path, { highWaterMark: 4 * 2 ** 20 }).pipe(counter)) as ReadableStream;
  const r = await sendStream<T>(ctx, method, url(sha256), body);
  progress.done();
  return r;
}

/** The files of a built installer, in upload order: the manifest last, once the files it describes are in place. */
const INSTALLER_FILES = ['initrd.img', 'vmlinuz', 'manifest.json'] as const;

/** Uploads the installer built in `dataDir` to the controller (PUT /api/v1/installer/:file). */
export async function uploadInstaller(ctx: CliContext, dataDir: string): Promise<{ file: string; bytes: number; sha256: string }[]> {
  const dir = join(dataDir, 'boot', 'installer');
  const missing = INSTALLER_FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) throw new UsageError(`no built installer in ${dir} (missing ${missing.join(', ')}): run plinth installer build first`);
  const done = [];
  for (const file of INSTALLER_FILES) {
    done.push(await uploadFile<{ file: string; bytes: number; sha256: string }>(ctx, join(dir, file), (sha256) => `/api/v1/installer/${file}?sha256=${sha256}`, file));
  }
  return done;
}
