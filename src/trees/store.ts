import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, createWriteStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { PlinthError, notFound, validation } from '../core/errors.js';
import { TREE_NAME_PATTERN } from '../protocol/deploy.js';

const execFileAsync = promisify(execFile);

/**
 * eDeploy's trees: a role at a version is a tree of files, laid out the way eDeploy's rsync
 * server serves them, so that eDeploy's paths work unchanged:
 *
 *   trees/install/<version>/<role>/            the tree (rsync module `install`)
 *   trees/metadata/<from>/<role>/<to>/          what an upgrade from one version to the next
 *                                               needs: exclude, add_only, pre, post (module `metadata`)
 *   trees/meta/<role>/<version>.json            Plinth's record of the tree (not served)
 *   trees/.incoming/                            imports under way (not served)
 *
 * A tree is immutable once imported: an import lands in `.incoming` and is renamed into place
 * only when complete, so the rsync daemon and HTTP never serve half a tree. The file system is
 * the store (the rsync daemon reads it directly); there is no database row to disagree with it.
 */
export { TREE_NAME_PATTERN };
const NAME = new RegExp(TREE_NAME_PATTERN);

/** The files an upgrade step may carry, as eDeploy names them. */
export const UPGRADE_FILES = ['exclude', 'add_only', 'pre', 'post'] as const;
export type UpgradeFile = (typeof UPGRADE_FILES)[number];
export type UpgradeStep = Partial<Record<UpgradeFile, string>>;

export interface Tree {
  role: string;
  version: string;
  /** Regular files, links and directories in the tree. */
  entries: number;
  /** Bytes of the regular files. */
  bytes: number;
  importedAt: string;
  /** Versions this tree can be upgraded to (metadata steps stored from it). */
  upgrades: string[];
}

type TreeRecord = Omit<Tree, 'upgrades'>;

function checkName(field: string, value: string): string {
  if (!NAME.test(value)) throw validation(field, `'${value}' must match ${TREE_NAME_PATTERN}`);
  return value;
}

/** Counts what a tree holds without following links. */
function measure(dir: string): { entries: number; bytes: number } {
  let entries = 0;
  let bytes = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      entries++;
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) bytes += st.size;
    }
  };
  walk(dir);
  return { entries, bytes };
}

export class TreeStore {
  readonly root: string;

  constructor(
    dataDir: string,
    private readonly clock: Clock,
  ) {
    this.root = join(dataDir, 'trees');
  }

  get installDir(): string {
    return join(this.root, 'install');
  }

  get metadataDir(): string {
    return join(this.root, 'metadata');
  }

  private treeDir(role: string, version: string): string {
    return join(this.installDir, version, role);
  }

  private recordFile(role: string, version: string): string {
    return join(this.root, 'meta', role, `${version}.json`);
  }

  private incoming(): string {
    const dir = join(this.root, '.incoming', randomBytes(8).toString('hex'));
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    return dir;
  }

  /** Removes imports a crash left in `.incoming`. */
  removeLeftovers(): void {
    rmSync(join(this.root, '.incoming'), { recursive: true, force: true });
  }

  list(): Tree[] {
    const metaRoot = join(this.root, 'meta');
    if (!existsSync(metaRoot)) return [];
    const trees: Tree[] = [];
    for (const role of readdirSync(metaRoot).sort()) {
      for (const f of readdirSync(join(metaRoot, role)).sort()) {
        if (!f.endsWith('.json')) continue;
        trees.push(this.withUpgrades(JSON.parse(readFileSync(join(metaRoot, role, f), 'utf8')) as TreeRecord));
      }
    }
    return trees;
  }

  get(role: string, version: string): Tree {
    checkName('role', role);
    checkName('version', version);
    const file = this.recordFile(role, version);
    if (!existsSync(file)) throw notFound('tree', `${role}-${version}`);
    return this.withUpgrades(JSON.parse(readFileSync(file, 'utf8')) as TreeRecord);
  }

  /** The directory of a stored tree (for the HTTP tarball), or not_found. */
  dirOf(role: string, version: string): string {
    this.get(role, version);
    return this.treeDir(role, version);
  }

  private withUpgrades(r: TreeRecord): Tree {
    const dir = join(this.metadataDir, r.version, r.role);
    const upgrades = existsSync(dir) ? readdirSync(dir).sort() : [];
    return { ...r, upgrades };
  }

  /**
   * Imports a tree from a tar stream (plain or compressed; GNU tar detects which and refuses
   * members that climb out with `..`). Nothing is visible until the whole tree is in place.
   */
  async importTar(role: string, version: string, body: Readable): Promise<Tree> {
    checkName('role', role);
    checkName('version', version);
    if (existsSync(this.recordFile(role, version))) {
      throw new PlinthError('conflict', `tree ${role}-${version} already exists: a version is immutable, import the change as a new version`, { details: { field: 'version', role, version } });
    }
    const work = this.incoming();
    try {
      const archive = join(work, 'archive');
      await pipeline(body, createWriteStream(archive));
      const tree = join(work, 'tree');
      mkdirSync(tree, { mode: 0o755 });
      try {
        await execFileAsync('tar', ['-xf', archive, '-C', tree, '--numeric-owner', '--delay-directory-restore'], { maxBuffer: 1024 * 1024 });
      } catch (e) {
        const stderr = String((e as { stderr?: string }).stderr ?? '').trim().split('\n').slice(0, 3).join('; ');
        throw validation('body', `not a tar archive tar can extract: ${stderr || (e as Error).message}`);
      }
      rmSync(archive);
      // A tree's root is the host's `/`: it must be a directory any reader can enter.
      chmodSync(tree, 0o755);
      const { entries, bytes } = measure(tree);
      const record: TreeRecord = { role, version, entries, bytes, importedAt: iso(this.clock.now()) };
      const dest = this.treeDir(role, version);
      mkdirSync(join(this.installDir, version), { recursive: true, mode: 0o755 });
      if (existsSync(dest)) rmSync(dest, { recursive: true, force: true }); // a tree without its record: an import that crashed between the two renames
      renameSync(tree, dest);
      mkdirSync(join(this.root, 'meta', role), { recursive: true });
      const tmp = `${this.recordFile(role, version)}.${randomBytes(4).toString('hex')}`;
      writeFileSync(tmp, JSON.stringify(record));
      renameSync(tmp, this.recordFile(role, version));
      return this.withUpgrades(record);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  /**
   * Stores the metadata of the upgrade step `from` → `to` of a role (eDeploy's
   * `metadata/<from>/<role>/<to>/`), replacing a previous one whole. Both trees must exist.
   */
  setUpgrade(role: string, from: string, to: string, step: UpgradeStep): Tree {
    this.get(role, from);
    this.get(role, to);
    if (from === to) throw validation('to', 'an upgrade goes to another version');
    for (const f of ['pre', 'post'] as const) {
      const s = step[f];
      if (s !== undefined && !s.startsWith('#!')) throw validation(f, 'a script starts with #! (it is run as a program on the host)');
    }
    const parent = join(this.metadataDir, from, role);
    mkdirSync(parent, { recursive: true, mode: 0o755 });
    const work = this.incoming();
    try {
      for (const f of UPGRADE_FILES) {
        const text = step[f];
        if (text === undefined) continue;
        writeFileSync(join(work, f), text, { mode: f === 'pre' || f === 'post' ? 0o755 : 0o644 });
      }
      const dest = join(parent, to);
      // The previous step moves aside first, so the directory is always one whole step.
      const old = existsSync(dest) ? join(this.root, '.incoming', `old-${randomBytes(8).toString('hex')}`) : null;
      if (old) renameSync(dest, old);
      renameSync(work, dest);
      if (old) rmSync(old, { recursive: true, force: true });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    return this.get(role, from);
  }

  /** The stored upgrade step, as text per file. */
  getUpgrade(role: string, from: string, to: string): UpgradeStep {
    this.get(role, from);
    const dir = join(this.metadataDir, from, role, checkName('to', to));
    if (!existsSync(dir)) throw notFound('upgrade', `${role} ${from} → ${to}`);
    const step: UpgradeStep = {};
    for (const f of UPGRADE_FILES) if (existsSync(join(dir, f))) step[f] = readFileSync(join(dir, f), 'utf8');
    return step;
  }

  /**
   * The tree as eDeploy's `.edeploy` file (a gzip'ed tar of the tree's root), streamed by tar.
   * `name` is `<role>-<version>`; both may contain `-`, so each split is tried.
   */
  tarball(name: string): { role: string; version: string; stream: Readable; child: ChildProcess } {
    const { role, version } = this.resolve(name);
    const child = spawn('tar', ['-C', this.treeDir(role, version), '--numeric-owner', '-czf', '-', '.'], { stdio: ['ignore', 'pipe', 'ignore'] });
    return { role, version, stream: child.stdout!, child };
  }

  /** The stored tree a `<role>-<version>` name means (both may contain `-`, so each split is tried), or not_found. */
  resolve(name: string): { role: string; version: string } {
    for (let i = name.indexOf('-'); i > 0; i = name.indexOf('-', i + 1)) {
      const role = name.slice(0, i);
      const version = name.slice(i + 1);
      if (NAME.test(role) && NAME.test(version) && existsSync(this.recordFile(role, version))) return { role, version };
    }
    throw notFound('tree', name);
  }
}
