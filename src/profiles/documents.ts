import type { HwTuple } from '../core/facts.js';
import { PlinthError, validation } from '../core/errors.js';
import { expandModel, isSourceError, plainToValue, readSpecsText, type PyDict } from '../matching/index.js';
import type { DeployConfig } from './deploy-config.js';
import { MAX_POOL_ENTRIES, type ApplyBodyType, type PoolInputBody, type ProfileInputBody } from './schemas.js';

/**
 * Profile and pool documents (API bodies, YAML files, an eDeploy CONFIGDIR turned into the
 * same shape) checked and turned into what is stored. Every error names the field as the
 * API does (`profiles[2].spec[3][1]`), so the CLI can point at the line of the YAML file.
 */

export interface ProfileDraft {
  name: string;
  position: number | undefined;
  description: string | null;
  spec: HwTuple[];
  /** The eDeploy text the spec was read from, kept for explanations with line numbers. */
  specSource: string | null;
  /** Machines that may hold the profile, or null for unlimited. */
  quota: number | null;
  pool: string | null;
  releaseReturnsEntry: boolean;
  deploy: DeployConfig;
}

export interface PoolDraft {
  name: string;
  description: string | null;
  /** The generate model as given, or null when the entries were written out. */
  model: PyDict | null;
  entries: PyDict[];
}

/** Where an eDeploy spec text is said to come from in messages and explanations. */
export const specFileLabel = (profile: string): string => `${profile}.specs`;

function specValue(v: unknown, field: string): string {
  // Decision 8 of the eDeploy notes: values are compared as strings, so 8 is written '8'.
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  throw validation(field, 'must be a string or a number');
}

function readSpecLines(lines: readonly unknown[], field: string): HwTuple[] {
  return lines.map((line, i) => {
    const at = `${field}[${i}]`;
    if (!Array.isArray(line)) throw validation(at, 'must be a list of 4 values [class, id, key, value]');
    if (line.length !== 4) throw validation(at, `has ${line.length} values; a spec line has 4 (class, id, key, value)`);
    return line.map((v, j) => specValue(v, `${at}[${j}]`)) as HwTuple;
  });
}

/** Reads a quota as written: a whole number ≥ 0, or `unlimited` (`*` as in eDeploy's state, or null). */
export function readQuota(v: unknown, field: string): number | null {
  if (v === undefined || v === null || v === 'unlimited' || v === '*') return null;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1_000_000_000) return v;
  if (typeof v === 'string' && /^\s*\d{1,10}\s*$/.test(v)) return Number(v);
  throw validation(field, "must be a whole number of machines (0 or more) or 'unlimited'");
}

export function readProfile(input: ProfileInputBody, field: string): ProfileDraft {
  const hasSpec = input.spec !== undefined;
  const hasText = input.specText !== undefined;
  if (hasSpec === hasText) throw validation(hasSpec ? `${field}.specText` : `${field}.spec`, 'give the spec either as spec (a list of lines) or as specText (eDeploy text), exactly one of them');
  let spec: HwTuple[];
  let specSource: string | null = null;
  if (hasSpec) {
    spec = readSpecLines(input.spec!, `${field}.spec`);
  } else {
    specSource = input.specText!;
    try {
      spec = readSpecsText(specSource, { file: specFileLabel(input.name), format: 'python' }).map((r) => r.tuple);
    } catch (e) {
      if (isSourceError(e)) throw validation(`${field}.specText`, e.message, { line: e.line, column: e.column });
      throw e;
    }
  }
  return {
    name: input.name,
    position: input.position,
    description: input.description ?? null,
    spec,
    specSource,
    quota: readQuota(input.quota, `${field}.quota`),
    pool: input.pool ?? null,
    releaseReturnsEntry: input.releaseReturnsEntry ?? false,
    deploy: input.deploy ?? {},
  };
}

function toDict(v: unknown, field: string): PyDict {
  try {
    return plainToValue(v) as PyDict;
  } catch (e) {
    throw validation(field, (e as Error).message);
  }
}

export function readPool(input: PoolInputBody, field: string): PoolDraft {
  const hasEntries = input.entries !== undefined;
  const hasModel = input.generate !== undefined;
  if (hasEntries === hasModel) throw validation(hasEntries ? `${field}.generate` : `${field}.entries`, 'give either entries (written out) or generate (a model), exactly one of them');
  if (hasEntries) {
    return {
      name: input.name,
      description: input.description ?? null,
      model: null,
      entries: input.entries!.map((e, i) => toDict(e, `${field}.entries[${i}]`)),
    };
  }
  const model = toDict(input.generate, `${field}.generate`);
  let entries: PyDict[];
  try {
    entries = expandModel(model, { maxEntries: MAX_POOL_ENTRIES });
  } catch (e) {
    // The matching library names the model `generate` and its keys `generate.key`.
    const inner = e instanceof PlinthError && typeof e.details?.field === 'string' ? e.details.field : 'generate';
    const detail = (e as Error).message.startsWith(`${inner}: `) ? (e as Error).message.slice(inner.length + 2) : (e as Error).message;
    throw validation(`${field}.${inner}`, detail);
  }
  return { name: input.name, description: input.description ?? null, model, entries };
}

export interface ApplyDrafts {
  pools: PoolDraft[];
  profiles: ProfileDraft[];
}

/** Checks a whole document before anything is written; names must be unique within it. */
export function readApplyBody(body: ApplyBodyType): ApplyDrafts {
  const pools = (body.pools ?? []).map((p, i) => readPool(p, `pools[${i}]`));
  const profiles = (body.profiles ?? []).map((p, i) => readProfile(p, `profiles[${i}]`));
  const dup = <T extends { name: string }>(items: T[], kind: string) => {
    const seen = new Set<string>();
    items.forEach((it, i) => {
      if (seen.has(it.name)) throw validation(`${kind}[${i}].name`, `'${it.name}' appears twice in the document`);
      seen.add(it.name);
    });
  };
  dup(pools, 'pools');
  dup(profiles, 'profiles');
  return { pools, profiles };
}
