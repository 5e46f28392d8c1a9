import { readFile } from 'node:fs/promises';
import { PlinthError } from '../core/errors.js';
import { failProfileInConfigDir, resolveInConfigDir } from './config-dir.js';
import { isEdeployError } from './edeploy-errors.js';
import { readCmdbText, readHwText, readSpecsText } from './file-forms.js';
import type { LockOptions } from './file-lock.js';
import { matchAll } from './matcher.js';
import { isSourceError } from './source-error.js';

/**
 * What the CLI subcommands do, as functions returning what to print and the exit status
 * (they never exit the process). Exit statuses: 0 success, 1 a well-formed "no" (no match,
 * pool exhausted, lock not obtained), 2 an input that cannot be read (missing or malformed
 * file; stderr then holds one line, `file:line:column: reason` for a malformed file).
 */

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const json = (v: unknown): string => `${JSON.stringify(v)}\n`;

async function readInput(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new InputError(`${path}: cannot read: ${err.code ?? err.message}`);
  }
}

class InputError extends Error {}

function failure(e: unknown): CommandResult {
  if (isSourceError(e) || e instanceof InputError) return { exitCode: 2, stdout: '', stderr: `${e.message}\n` };
  if (isEdeployError(e)) return { exitCode: 1, stdout: '', stderr: `${e.message}\n` };
  if (e instanceof PlinthError) {
    // Invalid content found after parsing (a bad count in state, a bad range in a model).
    return { exitCode: e.code === 'validation' ? 2 : 1, stdout: '', stderr: `${e.message}\n` };
  }
  throw e;
}

/**
 * `spec-match SPECS HW` (eDeploy's `try_match`): prints `{"matched": bool, "vars": {...}}`;
 * exit 0 when the specs match, 1 when not, 2 on an unreadable file.
 */
export async function specMatchCommand(specsPath: string, hwPath: string): Promise<CommandResult> {
  try {
    const specs = readSpecsText(await readInput(specsPath), { file: specsPath });
    const hw = readHwText(await readInput(hwPath), { file: hwPath });
    const result = matchAll(specs, hw);
    const stderr = result.limitReached ? 'spec-match: the search gave up at its step limit; the specs are treated as not matching\n' : '';
    return { exitCode: result.matched ? 0 : 1, stdout: json({ matched: result.matched, vars: result.vars }), stderr };
  } catch (e) {
    return failure(e);
  }
}

/** `pool-expand MODEL`: prints the entries a CMDB model (or list) stands for, as a JSON array. */
export async function poolExpandCommand(modelPath: string): Promise<CommandResult> {
  try {
    const source = readCmdbText(await readInput(modelPath), { file: modelPath });
    return { exitCode: 0, stdout: `${JSON.stringify(source.entries, null, 2)}\n`, stderr: '' };
  } catch (e) {
    return failure(e);
  }
}

export interface EdeployResolveOptions {
  configDir: string;
  /** The machine's hardware list (`.hw` Python literal, or `.json`). */
  hwPath?: string;
  /** Report that a machine of this profile failed: its quota is given back. */
  failure?: string;
  lockPath?: string;
  lock?: LockOptions;
}

/**
 * `edeploy-resolve --config-dir DIR (--hw FILE | --failure PROFILE)`. With a hardware list:
 * prints `{"profile": NAME, "vars": {...}}`, updating `state` and the CMDB; exit 1 with
 * eDeploy's message when nothing matches or the pool is exhausted. With `failure`: prints
 * `{"profile": NAME, "changed": bool, "count": N}` and exits 0, as eDeploy did.
 */
export async function edeployResolveCommand(options: EdeployResolveOptions): Promise<CommandResult> {
  const lockOptions = { ...(options.lockPath ? { lockPath: options.lockPath } : {}), ...(options.lock ? { lock: options.lock } : {}) };
  try {
    if (options.failure !== undefined) {
      if (options.hwPath !== undefined) throw new InputError('edeploy-resolve: give either a hardware list or --failure, not both');
      const r = await failProfileInConfigDir(options.configDir, options.failure, lockOptions);
      return { exitCode: 0, stdout: json(r), stderr: '' };
    }
    if (options.hwPath === undefined) throw new InputError('edeploy-resolve: a hardware list or --failure is required');
    const hw = readHwText(await readInput(options.hwPath), { file: options.hwPath });
    const r = await resolveInConfigDir(options.configDir, hw, lockOptions);
    return { exitCode: 0, stdout: json({ profile: r.profile, vars: r.vars }), stderr: '' };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && !(e instanceof PlinthError)) {
      return { exitCode: 2, stdout: '', stderr: `${(e as Error).message}\n` };
    }
    return failure(e);
  }
}
