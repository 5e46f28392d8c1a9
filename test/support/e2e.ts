import { existsSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { sha256File } from '../../src/build/digest.js';
import { buildInstaller, installerCacheDir, type BuildInstallerOptions, type BuildInstallerResult } from '../../src/installer/index.js';
import { PlinthError } from '../../src/core/errors.js';
import { ensureBuilt, freePort, ROOT } from './plinth-process.js';
import { sqliteBackend } from './backends.js';
import { freshController } from './controller.js';
import type { ControllerOptions } from '../../src/controller.js';
import { BUILTIN_PROVIDER_FACTORIES, ProviderRegistry } from '../../src/providers/registry.js';
import { LabProvider } from '../../src/lab/provider.js';
import { TEST_QEMU_LAUNCHER } from './qemu-processes.js';

/**
 * Shared pieces of the end-to-end tests: the real installer (built once from Debian packages
 * with the real agent, cached across test files and runs), and a real controller listening on
 * loopback that QEMU guests reach as 10.0.2.2.
 */
export const E2E_DIR = process.env.PLINTH_E2E_DIR ?? '/tmp/plinth-e2e';

const installers = new Map<string, Promise<{ kernel: string; initrd: string }>>();

/**
 * Runs a build, waiting while another process holds its cache's build lock (the builders
 * refuse a second build instead of waiting; test files and other runs share E2E_DIR's caches,
 * and a build takes its lock even for a cache hit): two files asking for the same build at
 * once get one build, the second finding it done. `build` must check again what is there.
 */
export async function whenBuildLockFree<T>(build: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await build();
    } catch (e) {
      if (!(e instanceof PlinthError && e.code === 'conflict' && /lock/.test(e.message))) throw e;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/** buildInstaller, waiting while another process builds in the same layer cache. */
export const buildInstallerWhenFree = (options: BuildInstallerOptions): Promise<BuildInstallerResult> => whenBuildLockFree(() => buildInstaller(options));

/**
 * The installer, built once per set of extras: the plain one in E2E_DIR/installer, one with
 * extra packages (`plinth installer build --package …`) in a data directory of its own
 * (E2E_DIR/installer-<packages>), so that it never replaces the one other files boot. Both
 * use the plain one's layer cache: the extras are a layer over its cached base. What a file
 * boots is pinned (pinnedInstaller): another run sharing E2E_DIR (another checkout, another
 * agent) may publish its own build there while this file's VMs boot.
 */
export function sharedInstaller(packages: string[] = []): Promise<{ kernel: string; initrd: string }> {
  const key = [...packages].sort().join('-');
  let installer = installers.get(key);
  if (!installer) {
    installer = (async () => {
      ensureBuilt();
      const dataDir = join(E2E_DIR, key ? `installer-${key}` : 'installer');
      mkdirSync(dataDir, { recursive: true });
      for (;;) {
        const r = await buildInstallerWhenFree({
          dataDir,
          cacheDir: installerCacheDir(join(E2E_DIR, 'installer')),
          agentBundle: join(ROOT, 'dist', 'agent', 'agent.mjs'),
          log: () => undefined,
          ...(key ? { extras: { packages } } : {}),
        });
        const pinned = await pinnedInstaller(dataDir, r);
        if (pinned) return pinned;
      }
    })();
    installers.set(key, installer);
  }
  return installer;
}

/** How long a pinned installer is kept after a file last used it. */
const PINNED_KEPT_MS = 6 * 60 * 60_000;

/**
 * Hard links to the installer just built, in DATA_DIR/pinned/<initramfs sha256>/: a build
 * published into the same data directory later (a rename of boot/installer) leaves them as
 * they are. Null when another build was published before the links were made (the caller
 * builds again).
 */
async function pinnedInstaller(dataDir: string, r: BuildInstallerResult): Promise<{ kernel: string; initrd: string } | null> {
  const sha = r.manifest.artifacts.initramfs.sha256;
  const pinnedDir = join(dataDir, 'pinned');
  const dir = join(pinnedDir, sha.slice(0, 32));
  const files = { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') };
  mkdirSync(pinnedDir, { recursive: true });
  if (!existsSync(files.initrd)) {
    const staging = join(pinnedDir, `.new-${process.pid}`);
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging);
    try {
      linkSync(r.kernel, join(staging, 'vmlinuz'));
      linkSync(r.initramfs, join(staging, 'initrd.img'));
      if ((await sha256File(join(staging, 'initrd.img'))) !== sha || (await sha256File(join(staging, 'vmlinuz'))) !== r.manifest.artifacts.kernel.sha256) return null;
      try {
        renameSync(staging, dir);
      } catch (e) {
        if (!existsSync(files.initrd)) throw e; // else another file pinned the same build first
      }
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  const now = new Date();
  utimesSync(dir, now, now);
  for (const old of readdirSync(pinnedDir)) {
    const path = join(pinnedDir, old);
    const mtimeMs = (() => {
      try {
        return statSync(path).mtimeMs;
      } catch {
        return now.getTime(); // removed meanwhile by another file
      }
    })();
    if (path !== dir && now.getTime() - mtimeMs > PINNED_KEPT_MS) rmSync(path, { recursive: true, force: true });
  }
  return files;
}

/** The controller's providers, with lab QEMU started so that it dies with the test worker. */
export function testRegistry(): ProviderRegistry {
  const registry = new ProviderRegistry(BUILTIN_PROVIDER_FACTORIES);
  registry.register('qemu', (endpoint) => new LabProvider(endpoint, { launcher: TEST_QEMU_LAUNCHER }));
  return registry;
}

export async function e2eController(overrides: Record<string, unknown> = {}, opts: ControllerOptions & { installerPackages?: string[] } = {}) {
  const { installerPackages, ...controllerOpts } = opts;
  const files = await sharedInstaller(installerPackages);
  // Guests reach the loopback listener as 10.0.2.2, an address the controller never sees on its
  // sockets (QEMU's user network connects from the host's loopback), so it is the configured publicUrl.
  const listenPort = await freePort();
  const t = await freshController(
    sqliteBackend,
    { listen: `127.0.0.1:${listenPort}`, publicUrl: `http://10.0.2.2:${listenPort}`, ...overrides },
    { installer: () => files, registry: testRegistry(), ...controllerOpts },
  );
  const url = await t.controller.listen();
  const port = Number(new URL(url).port);
  return { ...t, url, port, bootUrl: `http://10.0.2.2:${port}/boot.ipxe` };
}

/** Polls until `check` returns a value (not undefined), or fails with the last seen state. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, describe?: () => Promise<string>): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s${describe ? `; ${await describe()}` : ''}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * A hash of the image builder's sources: a finished image or tree is kept while it is unchanged.
 * Keyed by the builder's content, not its files' times: a fresh clone has new times and
 * would otherwise rebuild an unchanged image on every run.
 */
async function builderRecipe(): Promise<string> {
  const { readFileSync, readdirSync } = await import('node:fs');
  const { createHash } = await import('node:crypto');
  const builderDir = join(ROOT, 'src', 'images', 'builder');
  const hash = createHash('sha256');
  for (const f of (readdirSync(builderDir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).sort()) {
    hash.update(f).update('\0').update(readFileSync(join(builderDir, f))).update('\0');
  }
  return hash.digest('hex');
}

/**
 * Runs `build` unless `stamp` holds `recipe` and every file in `outputs` exists; then records
 * the recipe. While another process builds in the same cache it waits, then checks again.
 */
async function buildOnce(stamp: string, recipe: string, outputs: string[], build: () => Promise<unknown>): Promise<void> {
  const { readFileSync, writeFileSync } = await import('node:fs');
  await whenBuildLockFree(async () => {
    const current = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
    if (outputs.every((f) => existsSync(f)) && current === recipe) return;
    await build();
    writeFileSync(stamp, `${recipe}\n`);
  });
}

let image: Promise<{ dir: string; name: string }> | null = null;

/**
 * The Debian 12 image `plinth image build` makes, built once (2 GiB, to keep writes short
 * under emulation) and reused while its recipe is unchanged: the builder caches the base
 * system, and a finished image is kept while the builder's sources hash the same.
 */
export function sharedImage(): Promise<{ dir: string; name: string }> {
  image ??= (async () => {
    const { buildImage, imageFileName, manifestFileName } = await import('../../src/images/builder/index.js');
    const dir = join(E2E_DIR, 'images');
    const name = 'debian-12-e2e';
    await buildOnce(join(dir, `${name}.recipe`), await builderRecipe(), [join(dir, manifestFileName(name)), join(dir, imageFileName(name))], () =>
      buildImage({ name, outputDir: dir, sizeBytes: 2 * 2 ** 30, cacheDir: join(E2E_DIR, 'image-cache'), log: () => undefined }),
    );
    return { dir, name };
  })();
  return image;
}

let tree: Promise<string> | null = null;

/**
 * The same system as a tree (`plinth image build ROLE --tree VERSION` builds it this way): an
 * `.edeploy` archive from the image's cached base system (no second debootstrap), kept while
 * the builder's sources hash the same. Its path.
 */
export function sharedTree(): Promise<string> {
  tree ??= (async () => {
    const { buildTree, treeFileName } = await import('../../src/images/builder/index.js');
    const dir = join(E2E_DIR, 'trees');
    const name = 'debian-12-e2e';
    const path = join(dir, treeFileName(name));
    await buildOnce(join(dir, `${name}.recipe`), await builderRecipe(), [path], () =>
      buildTree({ name, outputDir: dir, cacheDir: join(E2E_DIR, 'image-cache'), log: () => undefined }),
    );
    return path;
  })();
  return tree;
}

/** Puts the shared image into a controller's store (hard links: no copy of gigabytes). */
export async function adoptSharedImage(t: { config: { dataDir: string }; api: (m: string, p: string, b?: unknown) => Promise<{ statusCode: number; body: string }> }): Promise<string> {
  const { dir, name } = await sharedImage();
  const { imageFileName, manifestFileName, checksumFileName } = await import('../../src/images/builder/index.js');
  const { linkSync, mkdirSync: mk, existsSync } = await import('node:fs');
  const into = join(t.config.dataDir, 'images');
  mk(into, { recursive: true });
  for (const f of [imageFileName(name), manifestFileName(name), checksumFileName(name)]) if (!existsSync(join(into, f))) linkSync(join(dir, f), join(into, f));
  const r = await t.api('POST', `/api/v1/images/${name}/adopt`);
  if (r.statusCode !== 200) throw new Error(`adopt ${name}: ${r.body}`);
  return name;
}
