import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HwTuple } from '../core/facts.js';
import { validation } from '../core/errors.js';
import { copyFilePreserving, writeFileAtomic } from './atomic-file.js';
import type { CmdbEntry } from './cmdb.js';
import { withLock, type LockOptions } from './file-lock.js';
import { formatCmdb, formatState, readCmdbText, readSpecsText, readStateText, type CmdbSource } from './file-forms.js';
import type { GenerateOptions } from './generate.js';
import type { MatchOptions } from './matcher.js';
import { failProfile, resolveProfile, type StateCount } from './profiles.js';
import type { PyDict } from './python-values.js';
import type { SpecRule } from './spec-rules.js';

/**
 * eDeploy directory mode: what eDeploy's `upload.py` did with its CONFIGDIR for one machine.
 * Under the directory's lock, read `state`, match the machine against each profile's
 * `<profile>.specs` in order, allocate from `<profile>.cmdb` when the profile has one (no
 * file, or an empty list, means no pool), and write the CMDB and `state` back, each replaced
 * atomically. A CMDB that was a `generate(...)` model is kept as `<profile>.cmdb.orig`
 * before its expanded list replaces it, as eDeploy did. When no profile matches or the pool
 * is exhausted, nothing is written and eDeploy's message is thrown (an EdeployError).
 */

export interface ConfigDirOptions extends MatchOptions, GenerateOptions {
  /** Lock file; default `<configDir>/lock`, eDeploy's default when LOCKFILE is not set. */
  lockPath?: string;
  lock?: LockOptions;
}

export interface ConfigDirResolution {
  profile: string;
  vars: PyDict;
}

function profileFile(configDir: string, profile: string, ext: string): string {
  // Profile names come from `state` and become file names: keep them inside the directory.
  if (profile === '' || profile === '.' || profile === '..' || /[/\\\0]/.test(profile)) {
    throw validation('state', `profile name '${profile}' cannot be used as a file name`);
  }
  return join(configDir, `${profile}${ext}`);
}

/** Reads a file, or null when it does not exist. */
function readOptional(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function lockOf(configDir: string, options: ConfigDirOptions): string {
  return options.lockPath ?? join(configDir, 'lock');
}

/** Resolves one machine against an eDeploy CONFIGDIR, updating `state` and the CMDB. */
export async function resolveInConfigDir(configDir: string, hw: readonly HwTuple[], options: ConfigDirOptions = {}): Promise<ConfigDirResolution> {
  return withLock(lockOf(configDir, options), options.lock ?? {}, async () => {
    const statePath = join(configDir, 'state');
    const state = readStateText(readFileSync(statePath, 'utf8'), { file: statePath, format: 'python' });
    const cmdbSources = new Map<string, CmdbSource>();

    // Files are read as eDeploy read them, lazily, in state order: a broken file of a
    // profile that is never reached does not get in the way.
    const resolution = resolveProfile(
      state,
      hw,
      {
        specs: (profile): SpecRule[] | null => {
          const path = profileFile(configDir, profile, '.specs');
          const text = readOptional(path);
          return text === null ? null : readSpecsText(text, { file: path, format: 'python' });
        },
        cmdb: (profile): CmdbEntry[] | null => {
          const path = profileFile(configDir, profile, '.cmdb');
          const text = readOptional(path);
          if (text === null) return null;
          const source = readCmdbText(text, { file: path, format: 'python', maxEntries: options.maxEntries });
          cmdbSources.set(profile, source);
          return source.entries;
        },
      },
      { ...options, stateFile: statePath, configDir },
    );

    if (resolution.cmdb) {
      const path = profileFile(configDir, resolution.profile, '.cmdb');
      if (cmdbSources.get(resolution.profile)?.form === 'generate') await copyFilePreserving(path, `${path}.orig`);
      await writeFileAtomic(path, formatCmdb(resolution.cmdb.entries));
    }
    // An unlimited profile leaves the quotas as they were: nothing to write.
    if (JSON.stringify(resolution.state) !== JSON.stringify(state)) await writeFileAtomic(statePath, formatState(resolution.state));
    return { profile: resolution.profile, vars: resolution.vars };
  });
}

export interface FailureResult {
  profile: string;
  /** False for an unknown profile or an unlimited (`'*'`) one, as eDeploy. */
  changed: boolean;
  /** The profile's count after the change, or null for an unknown profile. */
  count: StateCount | null;
}

/** eDeploy's `failure=<profile>`: a machine failed to install, so its quota is given back. */
export async function failProfileInConfigDir(configDir: string, profile: string, options: Pick<ConfigDirOptions, 'lockPath' | 'lock'> = {}): Promise<FailureResult> {
  return withLock(lockOf(configDir, options), options.lock ?? {}, async () => {
    const statePath = join(configDir, 'state');
    const state = readStateText(readFileSync(statePath, 'utf8'), { file: statePath, format: 'python' });
    const result = failProfile(state, profile);
    if (result.changed) await writeFileAtomic(statePath, formatState(result.state));
    const entry = result.state.find((e) => e.profile === profile);
    return { profile, changed: result.changed, count: entry ? entry.count : null };
  });
}
