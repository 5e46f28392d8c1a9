import { CMDB_EXHAUSTED_MESSAGE, CMDB_NO_MATCH_MESSAGE, EdeployError } from './edeploy-errors.js';
import { cloneValue, dictFromEntries, hasKey, pyEquals, setKey, type PyDict, type PyValue } from './python-values.js';

/**
 * Choosing a CMDB entry for a matched machine, as eDeploy's `update_cmdb` did, as a pure
 * function: the inputs are left alone and the new entry list is returned.
 * 1. Reuse: the first entry that already carries the lookup variables (the `$$` variables
 *    when the spec has any, else all variables) is taken, used or not, so a reinstalled
 *    machine gets its old entry back.
 * 2. Otherwise, unless `$$` variables were given (then it is an error), the first free
 *    entry is taken. An entry is free when it has no `used` key, or `used: 0` (decision 7).
 * The taken entry becomes the machine's variables merged over the entry, with `used: 1`, and
 * those are also the variables returned.
 */

export type CmdbEntry = PyDict;

export interface Allocation {
  /** Position of the entry taken. */
  index: number;
  /** True when found by its variables (step 1), false when a free entry was taken. */
  reused: boolean;
  /** The whole list with that entry replaced. */
  entries: CmdbEntry[];
  /** The machine's variables with the entry's fields and `used: 1`; also the new entry. */
  vars: PyDict;
}

/** Decision 7: `used: 0` (or False, or '0') leaves an entry free. */
export function isEntryUsed(entry: CmdbEntry): boolean {
  if (!hasKey(entry, 'used')) return false;
  const used = entry.used;
  return !(used === 0 || used === false || used === '0' || used === null);
}

/**
 * Python `==` between a looked-up variable and an entry's value, except that a string and a
 * number compare by the number's string form (decision 8): an entry eDeploy wrote with
 * `'ipmi-channel': 2` still belongs to the machine that now reports `'2'`.
 */
function sameValue(wanted: PyValue, stored: PyValue): boolean {
  if (typeof wanted === 'string' && typeof stored === 'number') return wanted === String(stored);
  if (typeof wanted === 'number' && typeof stored === 'string') return stored === String(wanted);
  return pyEquals(wanted, stored);
}

/** eDeploy's `is_included`: every key of `wanted` is in `entry` with an equal value. */
export function entryIncludes(wanted: Readonly<Record<string, PyValue>>, entry: CmdbEntry): boolean {
  return Object.entries(wanted).every(([k, v]) => hasKey(entry, k) && sameValue(v, entry[k]!));
}

function merge(vars: Readonly<Record<string, PyValue>>, entry: CmdbEntry): PyDict {
  // Python's entry.update(var) then var.update(entry): the machine's values win, the
  // machine's keys come first, then the entry's other keys in their order.
  const out = dictFromEntries(Object.entries(vars).map(([k, v]) => [k, cloneValue(v)] as const));
  for (const [k, v] of Object.entries(entry)) if (!hasKey(out, k)) setKey(out, k, cloneValue(v));
  setKey(out, 'used', 1);
  return out;
}

/**
 * Picks the entry for a machine. `vars` are all its variables, `cmdbVars` its `$$` variables.
 * Throws EdeployError with eDeploy's messages when nothing can be given.
 */
export function allocateEntry(
  entries: readonly CmdbEntry[],
  vars: Readonly<Record<string, PyValue>>,
  cmdbVars: Readonly<Record<string, PyValue>> = {},
): Allocation {
  const forced = Object.keys(cmdbVars).length > 0;
  const wanted = forced ? cmdbVars : vars;
  let index = entries.findIndex((e) => entryIncludes(wanted, e));
  const reused = index >= 0;
  if (!reused) {
    if (forced) throw new EdeployError('cmdb-no-match', CMDB_NO_MATCH_MESSAGE, { lookup: { ...cmdbVars } });
    index = entries.findIndex((e) => !isEntryUsed(e));
    if (index < 0) throw new EdeployError('cmdb-exhausted', CMDB_EXHAUSTED_MESSAGE, { entries: entries.length });
  }
  const merged = merge(vars, entries[index]!);
  const next = entries.map((e, i) => (i === index ? merged : e));
  return { index, reused, entries: next, vars: cloneValue(merged) as PyDict };
}
