import type { Store } from '../store/database.js';
import { fromJson } from '../store/database.js';
import type { HwTuple } from '../core/facts.js';
import { PlinthError, validation } from '../core/errors.js';
import { requireMachine } from '../inventory/machine-rows.js';
import { allocate, describeFailure, isEligible, explainMatch, formatLocation, isEntryUsed, MemoryLedger, noMatchMessage, readSpecsText, type EntryState, type Holding, type SpecInput } from '../matching/index.js';
import { specFileLabel } from './documents.js';
import { entryFromRow, loadProfiles } from './rows.js';
import type { ExplanationView, SimulateBodyType, SimulationView } from './schemas.js';
import { poolNames } from './writes.js';

/**
 * Matching shown without changing anything: why a machine matches what it matches, and
 * what matching the inventory (or given hardware lists) would do now, through the matching
 * engine over an in-memory copy of the quotas and pools.
 */
export class MatchPreviewService {
  constructor(private readonly store: Store) {}

  /** For each profile in order: does the machine match it, and if not, the first rule that failed and why. */
  async explain(machineKey: string): Promise<ExplanationView> {
    const db = this.store.db;
    const m = await requireMachine(db, this.store.dialect, machineKey);
    const hw = m.facts?.hw;
    if (!hw || hw.length === 0) {
      throw new PlinthError('conflict', `machine ${m.name} has no hardware facts yet; inspect it first`, { details: { machine: m.name, state: m.state } });
    }
    const row = await db.selectFrom('machines').select(['profile_id', 'quota_held']).where('id', '=', m.id).executeTakeFirstOrThrow();
    const holding: Holding = { profileId: row.profile_id, quotaHeld: Boolean(row.quota_held) && row.profile_id !== null };
    const profiles = await loadProfiles(db);
    let selected: string | null = null;
    const items = profiles.map((p) => {
      const rules: SpecInput = p.specSource ? readSpecsText(p.specSource, { file: specFileLabel(p.name), format: 'python' }) : p.spec;
      const ex = explainMatch(rules, hw);
      const quotaExhausted = !isEligible(p, p.quota, holding);
      if (selected === null && ex.matched && !quotaExhausted) selected = p.name;
      const f = ex.failure;
      return {
        name: p.name,
        position: p.position,
        remaining: p.quota,
        quotaExhausted,
        matched: ex.matched,
        vars: ex.vars,
        failure: f
          ? {
              kind: f.kind,
              rule: f.specIndex + 1,
              spec: [...f.spec],
              at: f.at ? formatLocation(f.at) : null,
              bound: f.bound,
              message: f.message,
              nearMisses: f.nearMisses.map((n) => ({
                line: [...n.line],
                position: n.position === null ? null : n.position + 1,
                reason: n.failure ? describeFailure(n.failure) : null,
                takenByRule: n.takenBy === null ? null : n.takenBy + 1,
              })),
            }
          : null,
        text: quotaExhausted ? `${ex.text}\n(not tried: no quota left)` : ex.text,
      };
    });
    return { machine: { id: m.id, name: m.name }, current: m.match, selected, profiles: items };
  }

  /**
   * Which machine would get which profile and pool entry if each were matched now, one after
   * the other in name order, against copies of the quotas and pools: nothing is written.
   * Without `machines`, the inventory's machines with facts are used (each keeping what it
   * holds, as on re-inspection); with them, those hardware lists as new machines.
   */
  async simulate(body: SimulateBodyType): Promise<SimulationView> {
    const db = this.store.db;
    const profiles = await loadProfiles(db);
    const names = await poolNames(db);
    const pools = new Map<string, EntryState[]>();
    for (const id of new Set(profiles.map((p) => p.poolId).filter((x): x is string => !!x))) {
      const rows = await db.selectFrom('pool_entries').selectAll().where('pool_id', '=', id).orderBy('position').execute();
      pools.set(id, rows.map(entryFromRow));
    }
    const entryPool = new Map<string, string>();
    for (const [poolId, entries] of pools) for (const e of entries) entryPool.set(e.id, poolId);
    const free = (poolId: string) => pools.get(poolId)!.filter((e) => e.machineId === null && !isEntryUsed(e.data)).length;
    const before = {
      profiles: profiles.map((p) => p.quota),
      pools: [...pools.keys()].map((id) => free(id)),
    };
    // The engine changes these copies, never the database.
    const ledger = new MemoryLedger(profiles, (id) => pools.get(id));

    const items: SimulationView['items'] = [];
    const simulateOne = async (machine: { id: string; name: string; hw: readonly HwTuple[]; holding: Holding; entryId: string | null }) => {
      const poolId = machine.entryId ? entryPool.get(machine.entryId) : undefined;
      const entry = machine.entryId && poolId ? { id: machine.entryId, poolId } : null;
      const a = await allocate({ id: machine.id, hw: machine.hw, holding: machine.holding, entry }, profiles, ledger);
      if (!a.profile) {
        items.push({ machine: machine.name, profile: null, poolEntry: null, vars: {}, error: noMatchMessage(a.tried, profiles.length) });
      } else if (a.failure) {
        items.push({ machine: machine.name, profile: null, poolEntry: null, vars: {}, error: a.failure.message });
      } else if (!a.entry) {
        items.push({ machine: machine.name, profile: a.profile.name, poolEntry: null, vars: a.vars, error: null });
      } else {
        const pool = a.profile.poolId!;
        const poolEntry = { pool: names.get(pool) ?? pool, position: a.entry.entry.position, reused: a.entry.reused };
        items.push({ machine: machine.name, profile: a.profile.name, poolEntry, vars: JSON.parse(JSON.stringify(a.entry.data)), error: null });
      }
    };

    if (body.machines) {
      const lists = body.machines.map((m, i) => ({ name: m.name, hw: readHw(m.hw, `machines[${i}].hw`) }));
      for (const [i, m] of lists.entries()) {
        await simulateOne({ id: `simulated:${i}`, name: m.name, hw: m.hw, holding: { profileId: null, quotaHeld: false }, entryId: null });
      }
    } else {
      let after: string | undefined;
      for (;;) {
        let q = db
          .selectFrom('machines')
          .select(['id', 'name', 'facts', 'profile_id', 'quota_held', 'pool_entry_id'])
          .where('facts', 'is not', null)
          .where('state', '!=', 'retired');
        if (after !== undefined) q = q.where('name', '>', after);
        const page = await q.orderBy('name').limit(200).execute();
        if (page.length === 0) break;
        for (const r of page) {
          const hw = fromJson<{ hw?: HwTuple[] } | null>(r.facts, null)?.hw ?? [];
          await simulateOne({ id: r.id, name: r.name, hw, holding: { profileId: r.profile_id, quotaHeld: Boolean(r.quota_held) && r.profile_id !== null }, entryId: r.pool_entry_id });
        }
        after = page[page.length - 1]!.name;
      }
    }
    return {
      source: body.machines ? 'hardware-lists' : 'inventory',
      items,
      profiles: profiles.map((p, i) => ({ name: p.name, remainingBefore: before.profiles[i]!, remainingAfter: ledger.remaining(p) })),
      pools: [...pools.keys()].map((id, i) => ({ name: names.get(id) ?? id, freeBefore: before.pools[i]!, freeAfter: free(id) })),
    };
  }
}

/** A hardware list from a request: 4 values per line, numbers as their string form. */
function readHw(lines: readonly unknown[][], field: string): HwTuple[] {
  return lines.map((line, i) => {
    if (line.length !== 4) throw validation(`${field}[${i}]`, `has ${line.length} values; a hardware line has 4`);
    return line.map((v, j) => {
      if (typeof v === 'string') return v;
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
      throw validation(`${field}[${i}][${j}]`, 'must be a string or a number');
    }) as HwTuple;
  });
}

