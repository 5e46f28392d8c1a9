import type { Store } from '../store/database.js';
import { fromJson } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { PlinthError, validation } from '../core/errors.js';
import { formatBinarySize, parseSize } from '../core/size.js';
import type { Facts } from '../core/facts.js';
import { recordEvent } from './events.js';
import { actorLabel, type Actor, type Machine } from './machine.js';
import { hydrate, listMachineRows, updateMachineRow, type MachineFilter } from './machine-rows.js';

/**
 * What a caller asks of the machines it wants (hardcap's acquire, MAAS's allocate). Sizes are
 * bytes or size text (`8G`, `16GiB`: binary units, core/size.ts).
 */
export interface AllocationRequest {
  /** Who will hold the machines. */
  owner: string;
  /** How many machines; all of them or none. Default 1. */
  count?: number;
  /** At least this many logical CPUs (the facts' `cpu.threads`). */
  cpus?: number;
  /** At least this much installed memory. */
  memory?: number | string;
  /** At least one disk at least this large. */
  disk?: number | string;
  /** The CPU architecture (`x86_64`, `aarch64`; `amd64` and `arm64` are read as those). */
  arch?: string;
  /** `key` or `key=value`; every one must match. */
  tags?: string[];
  /** Only machines matched to this profile. */
  profile?: string;
  reason?: string;
}

export interface Allocation {
  owner: string;
  machines: Machine[];
}

/** The largest count one request may take; more is a bulk job, not an allocation. */
export const MAX_ALLOCATION = 1000;
/** Candidates read per query while looking for matches. */
const PAGE = 500;

const ARCH_ALIASES: Record<string, string> = { amd64: 'x86_64', x64: 'x86_64', arm64: 'aarch64', ppc64el: 'ppc64le' };
const normalArch = (a: string) => ARCH_ALIASES[a.toLowerCase()] ?? a.toLowerCase();

interface Constraints {
  count: number;
  cpus?: number;
  memory?: number;
  disk?: number;
  arch?: string;
  tags: { key: string; value?: string }[];
  profile?: string;
}

/** Checks and normalises a request; every refusal names the field. */
export function parseConstraints(req: AllocationRequest): Constraints {
  const count = req.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > MAX_ALLOCATION) throw validation('count', `must be a whole number from 1 to ${MAX_ALLOCATION}`);
  const c: Constraints = { count, tags: [] };
  if (req.cpus !== undefined) {
    if (!Number.isInteger(req.cpus) || req.cpus < 1) throw validation('cpus', 'must be a positive whole number');
    c.cpus = req.cpus;
  }
  for (const field of ['memory', 'disk'] as const) {
    const v = req[field];
    if (v === undefined) continue;
    const bytes = typeof v === 'number' ? v : parseSize(v);
    if (bytes === null || !Number.isSafeInteger(bytes) || bytes < 1) {
      throw validation(field, `'${v}' is not a size (bytes, or a number with K, M, G, T: 8G, 16GiB)`);
    }
    c[field] = bytes;
  }
  if (req.arch !== undefined) {
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(req.arch)) throw validation('arch', `'${req.arch}' is not a CPU architecture (x86_64, aarch64, …)`);
    c.arch = normalArch(req.arch);
  }
  for (const t of req.tags ?? []) {
    const i = t.indexOf('=');
    if (i === 0 || t === '') throw validation('tags', `'${t}' must be key or key=value`);
    c.tags.push(i < 0 ? { key: t } : { key: t.slice(0, i), value: t.slice(i + 1) });
  }
  if (req.profile !== undefined) c.profile = req.profile;
  return c;
}

/** Why a machine's facts fall short of the constraints, or null when they meet them. */
function shortfall(facts: Facts | null, c: Constraints): string | null {
  const needsFacts = c.cpus !== undefined || c.memory !== undefined || c.disk !== undefined || c.arch !== undefined;
  if (!needsFacts) return null;
  if (!facts) return 'not inspected';
  if (c.arch !== undefined && normalArch(facts.cpu.architecture) !== c.arch) return `arch is not ${c.arch}`;
  if (c.cpus !== undefined && facts.cpu.threads < c.cpus) return `fewer than ${c.cpus} CPUs`;
  if (c.memory !== undefined && facts.memory.totalBytes < c.memory) return `less than ${formatBinarySize(c.memory)} memory`;
  if (c.disk !== undefined && !facts.disks.some((d) => d.sizeBytes >= c.disk!)) return `no disk of ${formatBinarySize(c.disk)}`;
  return null;
}

function describe(c: Constraints): string {
  const parts = [
    ...(c.cpus !== undefined ? [`cpus>=${c.cpus}`] : []),
    ...(c.memory !== undefined ? [`memory>=${formatBinarySize(c.memory)}`] : []),
    ...(c.disk !== undefined ? [`disk>=${formatBinarySize(c.disk)}`] : []),
    ...(c.arch !== undefined ? [`arch=${c.arch}`] : []),
    ...c.tags.map((t) => `tag ${t.value === undefined ? t.key : `${t.key}=${t.value}`}`),
    ...(c.profile !== undefined ? [`profile ${c.profile}`] : []),
  ];
  return parts.length ? parts.join(', ') : 'no constraints';
}

/**
 * Allocation: picks `available`, unowned machines outside maintenance that meet the
 * constraints and makes `owner` their holder, all `count` of them in one transaction or none.
 *
 * Each machine is taken with a conditional update (still available, still unowned, not in
 * maintenance), so of several allocators racing for the same machine exactly one wins; the
 * others pass over it to the next candidate. Candidates are read and taken in name order,
 * so two allocators on PostgreSQL wait on rows in the same order and never deadlock. When
 * fewer than `count` could be taken, the transaction rolls back (nothing is held) and the
 * 409 says what was short: how many matched and why the others did not.
 */
export class Allocator {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async allocate(req: AllocationRequest, actor: Actor): Promise<Allocation> {
    if (!req.owner || req.owner.length > 128) throw validation('owner', 'must be 1 to 128 characters');
    const c = parseConstraints(req);
    return this.store.transaction(async (trx) => {
      const filter: MachineFilter = { states: ['available'], unowned: true, maintenance: false, tags: c.tags };
      if (c.profile !== undefined) {
        const p = await trx.selectFrom('profiles').select('id').where('name', '=', c.profile).executeTakeFirst();
        if (!p) throw validation('profile', `no profile named '${c.profile}'`);
        filter.profileId = p.id;
      }
      const at = iso(this.clock.now());
      const taken: string[] = [];
      const why = new Map<string, number>();
      let candidates = 0;
      let after: string | undefined;
      while (taken.length < c.count) {
        const rows = await listMachineRows(trx, this.store.dialect, filter, { limit: PAGE, withFacts: true, ...(after !== undefined ? { after } : {}) });
        for (const row of rows) {
          if (taken.length >= c.count) break;
          candidates++;
          const short = shortfall(fromJson<Facts | null>(row.facts, null), c);
          if (short) {
            why.set(short, (why.get(short) ?? 0) + 1);
            continue;
          }
          const won = await updateMachineRow(trx, row.id, { owner: req.owner, allocated_at: at }, at, (eb) =>
            eb.and([eb('state', '=', 'available'), eb('owner', 'is', null), eb('maintenance', '=', 0)]),
          );
          if (!won) {
            why.set('taken meanwhile', (why.get('taken meanwhile') ?? 0) + 1);
            continue;
          }
          taken.push(row.id);
          await recordEvent(trx, {
            machineId: row.id,
            at,
            actor: actorLabel(actor),
            action: 'allocate',
            fromState: 'available',
            toState: 'available',
            reason: req.reason ?? null,
            details: { owner: req.owner, previous: null, constraints: describe(c) },
          });
        }
        if (rows.length < PAGE) break;
        after = rows[rows.length - 1]!.name;
      }
      if (taken.length < c.count) {
        const reasons = [...why].map(([r, n]) => `${n} ${r}`);
        const matched = taken.length;
        throw new PlinthError(
          'conflict',
          `cannot allocate ${c.count} machine(s) (${describe(c)}): only ${matched} available unowned machine(s) match` +
            (candidates > matched ? ` (of ${candidates} available and unowned: ${reasons.join('; ')})` : candidates === 0 ? ' (none is available and unowned)' : ''),
          { details: { field: 'count', requested: c.count, matched, candidates, shortBy: c.count - matched, rejected: Object.fromEntries(why) } },
        );
      }
      const rows = await trx.selectFrom('machines').selectAll().where('id', 'in', taken).orderBy('name').execute();
      return { owner: req.owner, machines: await hydrate(trx, rows) };
    });
  }
}
