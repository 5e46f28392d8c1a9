import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { publishEntry, supersededEntries, verifiedEntry, type CachedFile } from './cache.js';
import { cacheKey, sha256Text } from './digest.js';
import { findProgram, missingTools, missingToolsMessage } from './host-tools.js';
import { runTool } from './process.js';
import { makeScratchDir, mountsUnder, removeScratchDir } from './scratch.js';

const dir = mkdtempSync(join(tmpdir(), 'plinth-build-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('host tools', () => {
  it('finds programs in PATH and the sbin directories, and files by absolute path', () => {
    expect(findProgram('sh')).toMatch(/\/sh$/);
    // Not in this PATH, but in /usr/sbin or /sbin on every Debian.
    expect(findProgram('losetup', '/nonexistent')).toMatch(/sbin\/losetup$/);
    expect(findProgram('/etc/hostname')).toBe('/etc/hostname');
    expect(findProgram('plinth-no-such-tool')).toBeNull();
  });

  it('names each missing tool with its Debian package, each package once', () => {
    const missing = missingTools([
      { need: 'sh', debianPackage: 'dash' },
      { need: 'plinth-no-such-tool', debianPackage: 'plinth-tools' },
      { need: '/nonexistent/keyring.gpg', debianPackage: 'plinth-tools' },
    ]);
    expect(missingToolsMessage(missing)).toBe(
      'missing host tools: plinth-no-such-tool (package plinth-tools), /nonexistent/keyring.gpg (package plinth-tools); install with: apt-get install plinth-tools',
    );
  });
});

describe('cache keys and entries', () => {
  it('gives equal inputs the same key whatever their key order, and other inputs another', () => {
    expect(cacheKey({ a: 1, b: ['x', 'y'], c: { d: null } })).toBe(cacheKey({ c: { d: null }, b: ['x', 'y'], a: 1, e: undefined }));
    expect(cacheKey({ a: 1, b: ['y', 'x'] })).not.toBe(cacheKey({ a: 1, b: ['x', 'y'] }));
    expect(cacheKey({ a: 1 })).toMatch(/^[0-9a-f]{24}$/);
  });

  it('publishes an entry with its record and uses it only while its files are intact', async () => {
    const built = makeScratchDir(dir, 'entry');
    writeFileSync(join(built, 'layer.bin'), 'layer content');
    const record = { file: 'layer.bin', bytes: 13, sha256: sha256Text('layer content') };
    const final = join(dir, 'cache', 'k1');
    await publishEntry(built, final, 'layer.json', record);
    expect(existsSync(built)).toBe(false);
    const filesOf = (r: CachedFile) => [r];
    expect(await verifiedEntry(final, 'layer.json', filesOf)).toEqual(record);

    writeFileSync(join(final, 'layer.bin'), 'layer CONTENT');
    expect(await verifiedEntry(final, 'layer.json', filesOf)).toBeNull();
    expect(await verifiedEntry(join(dir, 'cache', 'absent'), 'layer.json', filesOf)).toBeNull();
  });

  it('lists what newer entries supersede, oldest last, never the one in use', () => {
    const cache = join(dir, 'prune');
    mkdirSync(cache);
    ['a', 'b', 'c', 'd', 'skip.txt'].forEach((name, i) => {
      writeFileSync(join(cache, name), name);
      utimesSync(join(cache, name), 1000 + i, 1000 + i);
    });
    expect(supersededEntries(cache, 1, { inUse: 'b', select: (n) => !n.endsWith('.txt') })).toEqual(['c', 'a']);
    expect(supersededEntries(join(dir, 'no-such-cache'), 1)).toEqual([]);
  });
});

describe('scratch directories', () => {
  it('are made under their parent with the prefix', () => {
    const scratch = makeScratchDir(dir, 'tmp-base');
    expect(basename(scratch)).toMatch(/^tmp-base-\w{6}$/);
    expect(existsSync(scratch)).toBe(true);
  });

  const asRoot = process.getuid?.() === 0;
  it.skipIf(!asRoot)('are removed only after what is mounted below them is unmounted', async () => {
    const scratch = makeScratchDir(dir, 'mounted');
    const inner = join(scratch, 'root', 'proc');
    mkdirSync(inner, { recursive: true });
    await runTool('mount', ['-t', 'tmpfs', 'plinth-build-test', inner]);
    writeFileSync(join(inner, 'inside-the-mount'), 'x');
    expect(mountsUnder(scratch)).toEqual([inner]);
    await removeScratchDir(scratch);
    expect(mountsUnder(scratch)).toEqual([]);
    expect(existsSync(scratch)).toBe(false);
  });

  it('that do not exist are fine to remove', async () => {
    await expect(removeScratchDir(join(dir, 'never-made'))).resolves.toBeUndefined();
  });
});
