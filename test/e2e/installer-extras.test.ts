import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installerCacheDir, type BuildInstallerResult } from '../../src/installer/index.js';
import { buildInstallerWhenFree } from '../support/e2e.js';
import { testAgentSource } from '../support/installer-test-agent.js';

/**
 * `plinth installer build --package sysbench --package fio`: the packages are a layer over
 * the cached base layer (apt-get in a chroot of the base's root, only what changed packed),
 * so the base and its cache key stay the plain installer's. Checks the layers against each
 * other in the archives themselves (cpio listings and contents) and runs sysbench and fio in
 * the root the kernel would unpack (base, then extras, then agent), under chroot. No VM: the
 * scripts-health e2e boots this installer.
 *
 * Needs root and deb.debian.org. PLINTH_TEST_INSTALLER_DATA_DIR's layer cache is used (and
 * warmed) when set; otherwise a fresh cache builds the base too (debootstrap: minutes).
 */
const isRoot = process.getuid?.() === 0;
const keptDataDir = process.env.PLINTH_TEST_INSTALLER_DATA_DIR;

const sh = (script: string, cwd?: string): string => execFileSync('sh', ['-c', script], { encoding: 'utf8', maxBuffer: 64 << 20, ...(cwd ? { cwd } : {}) });
const listing = (layer: string): string[] => sh(`zstd -dc '${layer}' | cpio -it --quiet`).split('\n').filter(Boolean);
const unpack = (layer: string, dir: string, patterns: string[] = []): void => {
  mkdirSync(dir, { recursive: true });
  const list = join(dir, '..', `${Date.now()}.patterns`);
  writeFileSync(list, patterns.join('\n'));
  sh(`zstd -dc '${layer}' | cpio -idmu --quiet --no-absolute-filenames ${patterns.length ? `-E '${list}'` : ''}`, dir);
  rmSync(list);
};
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe.skipIf(!isRoot)('installer: site packages as a layer over the cached base', () => {
  let scratch: string;
  let cacheDir: string;
  let agentBundle: string;
  let plain: BuildInstallerResult;
  let withTools: BuildInstallerResult;
  const buildLog: string[] = [];
  const build = async (name: string, packages?: string[], modules?: string[]): Promise<BuildInstallerResult> => {
    buildLog.length = 0;
    const started = Date.now();
    try {
      return await buildInstallerWhenFree({
        dataDir: join(scratch, name),
        cacheDir,
        agentBundle,
        log: (line) => buildLog.push(line),
        ...(packages || modules ? { extras: { ...(packages ? { packages } : {}), ...(modules ? { modules } : {}) } } : {}),
      });
    } finally {
      console.log(`installer build (${name}) in ${((Date.now() - started) / 1000).toFixed(1)} s:\n  ${buildLog.join('\n  ')}`);
    }
  };
  const layerFile = (r: BuildInstallerResult, name: string): string => {
    const layer = r.manifest.layers.find((l) => l.name === name);
    if (!layer) throw new Error(`no ${name} layer in ${r.dir}`);
    return join(cacheDir, layer.file);
  };

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'plinth-installer-extras-'));
    cacheDir = keptDataDir ? installerCacheDir(keptDataDir) : join(scratch, 'cache');
    agentBundle = join(scratch, 'agent.mjs');
    writeFileSync(agentBundle, testAgentSource('extras-layer'));
  });

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('builds base, extras and agent layers; the base is the plain installer\'s, byte for byte', { timeout: 45 * 60_000 }, async () => {
    plain = await build('plain');
    withTools = await build('tools', ['sysbench', 'fio']);
    const m = withTools.manifest;

    expect(plain.manifest.layers.map((l) => l.name)).toEqual(['base', 'agent']);
    expect(m.layers.map((l) => l.name)).toEqual(['base', 'extras', 'agent']);
    const [base, extras] = m.layers;
    expect(base).toMatchObject({ key: plain.manifest.layers[0]!.key, sha256: plain.manifest.layers[0]!.sha256, cacheHit: true });
    expect(buildLog.some((l) => /debootstrap/.test(l))).toBe(false);
    // initrd.img is the three archives, in order.
    const concatenated = createHash('sha256');
    for (const name of ['base', 'extras', 'agent']) concatenated.update(readFileSync(layerFile(withTools, name)));
    expect(concatenated.digest('hex')).toBe(m.artifacts.initramfs.sha256);
    expect(sha256(withTools.initramfs)).toBe(m.artifacts.initramfs.sha256);

    expect(m.inputs.extras).toEqual({ packages: ['fio', 'sysbench'], components: ['main'] });
    expect(plain.manifest.inputs.extras).toBeUndefined();
    expect(m.packages).toHaveProperty('sysbench');
    expect(m.packages).toHaveProperty('fio');
    expect(plain.manifest.packages).not.toHaveProperty('sysbench');
    // The extras layer is the packages, a fraction of the base.
    expect(extras!.bytes).toBeLessThan(base!.bytes / 4);
  });

  it('the extras layer holds the packages\' files and nothing of the base unchanged', { timeout: 10 * 60_000 }, async () => {
    const baseFile = layerFile(withTools, 'base');
    const extrasFile = layerFile(withTools, 'extras');
    const basePaths = new Set(listing(baseFile));
    const extrasPaths = listing(extrasFile);
    for (const path of ['usr/bin/sysbench', 'usr/bin/fio']) {
      expect(extrasPaths).toContain(path);
      expect(basePaths.has(path)).toBe(false);
    }
    expect(new Set(extrasPaths).size).toBe(extrasPaths.length);

    // A path in both archives must be a file whose content the install changed (dpkg's
    // status and file lists, ld.so.cache, the groups a package added): never a directory,
    // never a file the base already has as it is.
    const common = extrasPaths.filter((p) => basePaths.has(p));
    console.log(`extras layer: ${extrasPaths.length} paths, ${common.length} of them replacing the base's: ${common.filter((p) => !p.startsWith('var/lib/dpkg/info/')).join(' ')} and ${common.filter((p) => p.startsWith('var/lib/dpkg/info/')).length} dpkg file lists`);
    expect(common).toContain('var/lib/dpkg/status');
    unpack(baseFile, join(scratch, 'common-base'), common);
    unpack(extrasFile, join(scratch, 'common-extras'), common);
    for (const path of common) {
      const before = lstatSync(join(scratch, 'common-base', path));
      const after = lstatSync(join(scratch, 'common-extras', path));
      expect(before.isDirectory() || after.isDirectory(), path).toBe(false);
      if (before.isFile() && after.isFile() && before.mode === after.mode) {
        expect(sha256(join(scratch, 'common-extras', path)), path).not.toBe(sha256(join(scratch, 'common-base', path)));
      }
    }
  });

  it('sysbench and fio run in the root the layers unpack to', { timeout: 10 * 60_000 }, async () => {
    const root = join(scratch, 'root');
    for (const name of ['base', 'extras', 'agent']) unpack(layerFile(withTools, name), root);
    expect(existsSync(join(root, 'opt/plinth/agent.mjs'))).toBe(true);
    expect(sh(`chroot '${root}' /usr/bin/sysbench --version`)).toMatch(/^sysbench \d/);
    expect(sh(`chroot '${root}' /usr/bin/fio --version`)).toMatch(/^fio-\d/);
    // The installer's own tools still work over the extras (libraries they share were not broken).
    expect(sh(`chroot '${root}' /usr/bin/curl --version`)).toMatch(/^curl \d/);
    rmSync(root, { recursive: true, force: true });
  });

  it('a kernel module the installer lacks is a layer of that module and the module indexes', { timeout: 10 * 60_000 }, async () => {
    const withModule = await build('module', undefined, ['dummy']);
    const m = withModule.manifest;
    expect(m.layers.map((l) => l.name)).toEqual(['base', 'extras', 'agent']);
    expect(m.layers[0]!.key).toBe(plain.manifest.layers[0]!.key);
    expect(m.inputs.extras).toEqual({ packages: [], components: ['main'], modules: ['dummy'] });
    expect(buildLog.some((l) => /apt-get/.test(l))).toBe(false);
    const release = m.kernel.release;
    const basePaths = new Set(listing(layerFile(withModule, 'base')));
    const extrasPaths = listing(layerFile(withModule, 'extras'));
    const module = extrasPaths.find((p) => /\/kernel\/drivers\/net\/dummy\.ko/.test(p));
    expect(module, extrasPaths.join(' ')).toBe(`usr/lib/modules/${release}/kernel/drivers/net/${module!.split('/').pop()}`);
    expect(basePaths.has(module!)).toBe(false);
    expect(extrasPaths).toContain(`usr/lib/modules/${release}/modules.dep`);
    // Only the module, its directory and depmod's indexes: no other module is repeated.
    expect(extrasPaths.filter((p) => /\.ko(\.\w+)?$/.test(p))).toEqual([module]);
    const root = join(scratch, 'module-root');
    for (const name of ['base', 'extras']) unpack(layerFile(withModule, name), root);
    expect(readFileSync(join(root, `usr/lib/modules/${release}/modules.dep`), 'utf8')).toMatch(/^kernel\/drivers\/net\/dummy\.ko\S*:/m);
    rmSync(root, { recursive: true, force: true });
  });

  it('is a cache hit the second time; the plain installer stays a cache hit too', { timeout: 5 * 60_000 }, async () => {
    const again = await build('tools', ['fio', 'sysbench']);
    expect(again.cacheHit).toBe(true);
    expect(again.manifest).toEqual(withTools.manifest);
    const plainAgain = await build('plain');
    expect(plainAgain.cacheHit).toBe(true);
  });
});
