import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { quotaOf, readCmdbText, readSpecsText, readStateText, SourceError } from '../matching/index.js';
import type { ApplyBodyType, PoolInputBody, ProfileInputBody } from './schemas.js';
import { NAME_PATTERN } from './schemas.js';

/**
 * An eDeploy CONFIGDIR read into one profiles document, unchanged in meaning:
 * - `state` gives the profiles, their order and their counts (`'*'` is unlimited; a count
 *   is what is left to take, so it becomes the profile's quota);
 * - `<profile>.specs` is kept as text (explanations then cite its lines);
 * - `<profile>.cmdb` becomes a pool of the same name: a `generate(...)` model stays a model,
 *   a list (eDeploy's expanded form, `used` marks included) stays a list. No file or an
 *   empty list means no pool, as in eDeploy.
 * Every file is parsed as a Python literal, never evaluated; a malformed one is an error
 * naming its file, line and column. Files `state` does not name are not read.
 */

export interface EdeployImport {
  body: ApplyBodyType;
  /** What was not imported, and why. */
  notes: string[];
}

const NAME_RE = new RegExp(NAME_PATTERN);

function readOptional(path: string): string | null {
  return existsSync(path) ? readFileSync(path, 'utf8') : null;
}

/** Python values as JSON: tuples become lists (which enumerate in generate(), as tuples do in Plinth). */
const toPlain = <T>(v: unknown): T => JSON.parse(JSON.stringify(v)) as T;

export function readEdeployConfigDir(dir: string): EdeployImport {
  const statePath = join(dir, 'state');
  const stateText = readOptional(statePath);
  if (stateText === null) throw new SourceError('no state file: not an eDeploy CONFIGDIR', { file: statePath, line: 1, column: 1 });
  const state = readStateText(stateText, { file: statePath, format: 'python' });
  const notes: string[] = [];
  const pools: PoolInputBody[] = [];
  const profiles: ProfileInputBody[] = [];
  const seen = new Set<string>();
  state.forEach((entry, i) => {
    const name = entry.profile;
    if (seen.has(name)) {
      notes.push(`${name}: listed again in state; only its first entry is imported (eDeploy gives failures back to the first one too)`);
      return;
    }
    seen.add(name);
    if (!NAME_RE.test(name) || name.length > 63) throw new SourceError(`profile name '${name}' cannot be used (letters, digits, '.', '_', '-'; at most 63)`, { file: statePath, line: 1, column: 1 });
    const specsPath = join(dir, `${name}.specs`);
    const specText = readOptional(specsPath);
    if (specText === null) {
      notes.push(`${name}: no ${name}.specs, not imported (eDeploy never matches such a profile)`);
      return;
    }
    readSpecsText(specText, { file: specsPath, format: 'python' });
    const cmdbPath = join(dir, `${name}.cmdb`);
    const cmdbText = readOptional(cmdbPath);
    let pool: string | null = null;
    if (cmdbText !== null) {
      const cmdb = readCmdbText(cmdbText, { file: cmdbPath, format: 'python' });
      if (cmdb.entries.length === 0) notes.push(`${name}: ${name}.cmdb is empty, so no pool (as in eDeploy)`);
      else {
        pool = name;
        pools.push(cmdb.form === 'generate' ? { name, generate: toPlain(cmdb.model) } : { name, entries: toPlain(cmdb.entries) });
      }
    }
    if (existsSync(join(dir, `${name}.configure`))) notes.push(`${name}: ${name}.configure not imported (deploys use the profile's deploy configuration and templates)`);
    const quota = quotaOf(entry.count, name);
    profiles.push({
      name,
      position: (i + 1) * 10,
      description: `imported from eDeploy ${dir}`,
      specText,
      quota: quota.unlimited ? 'unlimited' : Math.max(0, quota.remaining),
      pool,
    });
  });
  return { body: { pools, profiles }, notes };
}
