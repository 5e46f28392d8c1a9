import type { BootMethod } from '../core/boot-method.js';
import { sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';
import type { Db, Dialect } from '../store/database.js';
import { fromJson } from '../store/database.js';
import type { Database, MachinesTable } from '../store/schema.js';
import type { Machine } from './machine.js';
import { swapUuidByteOrder, type CandidateMachine, type Identity } from './identity.js';
import { PlinthError } from '../core/errors.js';
import { loadMatchRefs, matchOf, type MatchRefs } from './machine-match.js';

/**
 * Reading and writing machine rows (machines + machine_macs + machine_tags). Every function
 * takes the executor to use, so callers compose them inside one transaction.
 *
 * This module is the only writer of the machines table (src/inventory/machine-writers.test.ts
 * holds every other file to it): each update bumps `version` and sets `updated_at`, so
 * `version` counts every change a reader could see.
 */
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function rowToMachine(row: MachinesTable, macs: string[], tags: Record<string, string>, matchRefs?: MatchRefs): Machine {
  return {
    id: row.id,
    name: row.name,
    identity: {
      systemUuid: row.system_uuid,
      serial: row.serial,
      manufacturer: row.manufacturer,
      productName: row.product_name,
      assetTag: row.asset_tag,
      macs,
    },
    facts: fromJson(row.facts, null),
    state: row.state,
    targetState: row.target_state,
    stateDeadline: row.state_deadline,
    stateEnteredAt: row.state_entered_at,
    lastStage: row.last_stage,
    power: {
      state: row.power_state as Machine['power']['state'],
      readAt: row.power_read_at,
      source: row.power_source,
      expected: row.power_expected as Machine['power']['expected'],
      drift: Boolean(row.power_drift),
    },
    maintenance: Boolean(row.maintenance),
    maintenanceReason: row.maintenance_reason,
    protected: Boolean(row.protected),
    owner: row.owner,
    allocatedAt: row.allocated_at,
    tags,
    provider: { applianceId: row.appliance_id, ref: row.provider_ref },
    bootMethod: (row.boot_method as BootMethod | null) ?? null,
    lastError: fromJson(row.last_error, null),
    identityConflicts: fromJson(row.identity_conflicts, []),
    currentRunId: row.current_run_id,
    match: matchOf(row, matchRefs),
    deployment: { image: row.deployed_image, address: row.deployed_address, deployedAt: row.deployed_at, hostKeys: fromJson(row.deployed_host_keys, []), role: row.deployed_role ?? null, version: row.deployed_version ?? null },
    bootAddress: row.boot_address,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    version: Number(row.version),
  };
}

async function macsAndTags(db: Db, ids: string[]) {
  const macs = new Map<string, string[]>();
  const tags = new Map<string, Record<string, string>>();
  if (ids.length === 0) return { macs, tags };
  // Sorted here, not by the database: an ORDER BY tempts a planner without fresh statistics
  // into walking the whole (key, value) or mac index instead of looking these ids up.
  const [macRows, tagRows] = await Promise.all([
    db.selectFrom('machine_macs').select(['machine_id', 'mac']).where('machine_id', 'in', ids).execute(),
    db.selectFrom('machine_tags').select(['machine_id', 'key', 'value']).where('machine_id', 'in', ids).execute(),
  ]);
  macRows.sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
  tagRows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const r of macRows) (macs.get(r.machine_id) ?? macs.set(r.machine_id, []).get(r.machine_id)!).push(r.mac);
  for (const r of tagRows) (tags.get(r.machine_id) ?? tags.set(r.machine_id, {}).get(r.machine_id)!)[r.key] = r.value;
  return { macs, tags };
}

export async function hydrate(db: Db, rows: MachinesTable[]): Promise<Machine[]> {
  const { macs, tags } = await macsAndTags(db, rows.map((r) => r.id));
  const matchRefs = await loadMatchRefs(db, rows);
  return rows.map((r) => rowToMachine(r, macs.get(r.id) ?? [], tags.get(r.id) ?? {}, matchRefs));
}

/**
 * Loads a machine by id or name. With `lock`, the row is locked until the transaction ends
 * (PostgreSQL `FOR UPDATE`; on SQLite the write transaction already holds the lock).
 */
export async function loadMachine(db: Db, dialect: Dialect, key: string, opts: { lock?: boolean } = {}): Promise<Machine | null> {
  let q = db.selectFrom('machines').selectAll();
  q = UUID_RE.test(key) ? q.where((eb) => eb.or([eb('id', '=', key.toLowerCase()), eb('name', '=', key)])) : q.where('name', '=', key);
  if (opts.lock && dialect === 'postgres') q = q.forUpdate();
  const row = await q.executeTakeFirst();
  if (!row) return null;
  return (await hydrate(db, [row]))[0]!;
}

export async function requireMachine(db: Db, dialect: Dialect, key: string, opts: { lock?: boolean } = {}): Promise<Machine> {
  const m = await loadMachine(db, dialect, key, opts);
  if (!m) throw new PlinthError('not_found', `machine '${key}' not found`, { details: { machine: key } });
  return m;
}

export async function insertMachineRow(db: Db, row: MachinesTable, macs: string[], tags: Record<string, string>): Promise<void> {
  await insertMachineRows(db, [{ row, macs, tags }]);
}

/** Inserts machines with their MACs and tags: one statement per table, however many machines. */
export async function insertMachineRows(db: Db, machines: readonly { row: MachinesTable; macs: readonly string[]; tags: Record<string, string> }[]): Promise<void> {
  // Chunks keep a statement's parameters under SQLite's limit (32 766): a machine row has ~50 columns.
  for (const part of chunks(machines.map((m) => m.row), 200)) await db.insertInto('machines').values(part).execute();
  const macs = machines.flatMap((m) => m.macs.map((mac) => ({ mac, machine_id: m.row.id })));
  for (const part of chunks(macs, 2000)) await db.insertInto('machine_macs').values(part).execute();
  const tags = machines.flatMap((m) => Object.entries(m.tags).map(([key, value]) => ({ machine_id: m.row.id, key, value, machine_name: m.row.name })));
  for (const part of chunks(tags, 2000)) await db.insertInto('machine_tags').values(part).execute();
}

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

/**
 * The columns a write may set, each to a value or to an expression over the row (e.g. a
 * column copied from another). `version` and `updated_at` are left out: the writer sets them.
 */
export type MachineChanges = {
  [K in Exclude<keyof MachinesTable, 'id' | 'version' | 'updated_at'>]?: MachinesTable[K] | Expression<MachinesTable[K]>;
};

/** Which machine rows a write touches. */
export type MachineCondition = (eb: ExpressionBuilder<Database, 'machines'>) => Expression<SqlBool>;

/** What every write of machine rows sets: the changes, `updated_at`, and `version` one more. */
const bumped = (changes: MachineChanges, now: string) => ({ ...changes, updated_at: now, version: sql<number>`version + 1` });

/** A machine's tags carry its name (the order of a tag's page; migration 0018): those of the machine now called `name`. */
async function renameTags(db: Db, name: NonNullable<MachineChanges['name']>): Promise<void> {
  const named = db.selectFrom('machines').select('id').where('name', '=', name);
  await db.updateTable('machine_tags').set({ machine_name: name }).where('machine_id', 'in', named).execute();
}

/** Updates every row `where` selects and bumps each one's version; returns how many rows changed. */
export async function updateMachineRows(db: Db, where: MachineCondition, changes: MachineChanges, now: string): Promise<number> {
  const r = await db.updateTable('machines').set(bumped(changes, now)).where(where).executeTakeFirst();
  if (changes.name !== undefined && Number(r.numUpdatedRows) > 0) await renameTags(db, changes.name);
  return Number(r.numUpdatedRows);
}

/**
 * A locked machine's `version` alone: whether a machine loaded earlier in the transaction is
 * still the row (every write bumps it), without loading the row again. Null when it is gone.
 */
export async function machineVersion(db: Db, id: string): Promise<number | null> {
  const row = await db.selectFrom('machines').select('version').where('id', '=', id).executeTakeFirst();
  return row ? Number(row.version) : null;
}

/**
 * Updates one machine's columns, bumps its version and returns it as it now is, from the
 * updated row (RETURNING) instead of loading it again. When nothing wrote the row between
 * `before` and this update (its version is one more), the MACs, tags and unchanged facts
 * are `before`'s; otherwise they are read again.
 */
export async function updateMachineReturning(db: Db, before: Machine, changes: MachineChanges, now: string): Promise<Machine> {
  const row = await db.updateTable('machines').set(bumped(changes, now)).where('id', '=', before.id).returningAll().executeTakeFirstOrThrow();
  if (changes.name !== undefined) await renameTags(db, row.name);
  const unchanged = Number(row.version) === before.version + 1;
  const factsKept = unchanged && changes.facts === undefined;
  const [{ macs, tags }, refs] = await Promise.all([
    unchanged ? { macs: new Map([[row.id, before.identity.macs]]), tags: new Map([[row.id, before.tags]]) } : macsAndTags(db, [row.id]),
    loadMatchRefs(db, [row]),
  ]);
  const machine = rowToMachine(factsKept ? { ...row, facts: null } : row, macs.get(row.id) ?? [], tags.get(row.id) ?? {}, refs);
  return factsKept ? { ...machine, facts: before.facts } : machine;
}

/**
 * Updates one machine's columns and bumps its version. With `also`, only while the row still
 * satisfies it (a compare-and-set); returns whether the row changed.
 */
export async function updateMachineRow(db: Db, id: string, changes: MachineChanges, now: string, also?: MachineCondition): Promise<boolean> {
  const n = await updateMachineRows(db, (eb) => (also ? eb.and([eb('id', '=', id), also(eb)]) : eb('id', '=', id)), changes, now);
  return n > 0;
}

/** Deletes a machine row; its MACs, tags, runs and history go with it (foreign keys cascade). */
export async function deleteMachineRow(db: Db, id: string): Promise<void> {
  await db.deleteFrom('machines').where('id', '=', id).execute();
}

// MACs and tags are part of the machine a reader sees: their writers' callers update the
// machine row in the same transaction, whose version bump covers them.
export async function replaceMacs(db: Db, id: string, macs: string[]): Promise<void> {
  await db.deleteFrom('machine_macs').where('machine_id', '=', id).execute();
  if (macs.length) await db.insertInto('machine_macs').values(macs.map((mac) => ({ mac, machine_id: id }))).execute();
}

export async function addMacs(db: Db, id: string, macs: string[]): Promise<void> {
  if (macs.length) await db.insertInto('machine_macs').values(macs.map((mac) => ({ mac, machine_id: id }))).execute();
}

export async function replaceTags(db: Db, id: string, tags: Record<string, string>): Promise<void> {
  await db.deleteFrom('machine_tags').where('machine_id', '=', id).execute();
  const entries = Object.entries(tags);
  if (entries.length) {
    const { name } = await db.selectFrom('machines').select('name').where('id', '=', id).executeTakeFirstOrThrow();
    await db.insertInto('machine_tags').values(entries.map(([key, value]) => ({ machine_id: id, key, value, machine_name: name }))).execute();
  }
}

export const identityColumns = (id: Identity) => ({
  system_uuid: id.systemUuid,
  serial: id.serial,
  manufacturer: id.manufacturer,
  product_name: id.productName,
  asset_tag: id.assetTag,
});

/** Every machine that shares any identifier with `id` (for resolveIdentity). */
export async function findIdentityCandidates(db: Db, id: Identity): Promise<CandidateMachine[]> {
  if (!id.systemUuid && !id.serial && !id.assetTag && id.macs.length === 0) return [];
  const rows = await db
    .selectFrom('machines')
    .select(['id', 'system_uuid', 'serial', 'manufacturer', 'asset_tag'])
    .where((eb) => {
      const ors = [];
      // Either byte order of the first three fields (identity.ts, swapUuidByteOrder).
      if (id.systemUuid) ors.push(eb('system_uuid', 'in', [id.systemUuid, swapUuidByteOrder(id.systemUuid)]));
      if (id.serial) ors.push(eb('serial', '=', id.serial));
      if (id.assetTag) ors.push(eb('asset_tag', '=', id.assetTag));
      if (id.macs.length) {
        ors.push(eb('id', 'in', eb.selectFrom('machine_macs').select('machine_id').where('mac', 'in', id.macs)));
      }
      return eb.or(ors);
    })
    .execute();
  const { macs } = await macsAndTags(db, rows.map((r) => r.id));
  return rows.map((r) => ({
    id: r.id,
    systemUuid: r.system_uuid,
    serial: r.serial,
    manufacturer: r.manufacturer,
    assetTag: r.asset_tag,
    macs: macs.get(r.id) ?? [],
  }));
}

export interface MachineFilter {
  states?: string[];
  tags?: { key: string; value?: string }[];
  owner?: string;
  /** Only machines no one holds (owner is null). */
  unowned?: boolean;
  /** Only machines matched to this profile (by id). */
  profileId?: string;
  q?: string;
  maintenance?: boolean;
  applianceId?: string;
  /** The last power reading: on, off or unknown. */
  power?: string;
  /** The name of the profile matching gave the machine. */
  profile?: string;
  /** Tree deploys: the role and the version the installed system runs (as it last reported). */
  role?: string;
  version?: string;
}

const FULL_MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Every column but the facts document, which lists leave out unless asked (it is most of a row's bytes). */
export const SUMMARY_COLUMNS = [
  'id', 'name', 'system_uuid', 'serial', 'manufacturer', 'product_name', 'asset_tag', 'state', 'target_state',
  'state_deadline', 'state_entered_at', 'last_stage', 'power_state', 'power_read_at', 'power_source', 'maintenance',
  'maintenance_reason', 'protected', 'owner', 'allocated_at', 'appliance_id', 'provider_ref', 'last_error',
  'identity_conflicts', 'current_run_id', 'created_at', 'updated_at', 'version', 'power_expected', 'power_drift',
  'deployed_image', 'deployed_address', 'deployed_at', 'deployed_host_keys', 'deployed_role', 'deployed_version', 'boot_base_url', 'boot_address',
  'profile_id', 'match_vars', 'match_spec_vars', 'pool_entry_id', 'match_error', 'matched_at', 'quota_held', 'boot_method',
] as const satisfies readonly Exclude<keyof MachinesTable, 'facts'>[];
// A column added to the machines table must be listed above: this line stops compiling otherwise.
type UnlistedColumn = Exclude<Exclude<keyof MachinesTable, 'facts'>, (typeof SUMMARY_COLUMNS)[number]>;
const everyColumnListed: [UnlistedColumn] extends [never] ? true : UnlistedColumn = true;
void everyColumnListed;

/** The WHERE clause of a filter over the machines table (lists and counts share it). */
function filterWhere(filter: MachineFilter, dialect: Dialect) {
  return (eb: ExpressionBuilder<Database, 'machines'>): Expression<SqlBool> => {
    const all: Expression<SqlBool>[] = [];
    if (filter.states?.length) all.push(eb('state', 'in', filter.states));
    if (filter.owner !== undefined) all.push(eb('owner', '=', filter.owner));
    if (filter.unowned) all.push(eb('owner', 'is', null));
    if (filter.profileId !== undefined) all.push(eb('profile_id', '=', filter.profileId));
    if (filter.maintenance !== undefined) all.push(eb('maintenance', '=', filter.maintenance ? 1 : 0));
    if (filter.applianceId !== undefined) all.push(eb('appliance_id', '=', filter.applianceId));
    if (filter.power !== undefined) all.push(eb('power_state', '=', filter.power));
    if (filter.role !== undefined) all.push(eb('deployed_role', '=', filter.role));
    if (filter.version !== undefined) all.push(eb('deployed_version', '=', filter.version));
    if (filter.profile !== undefined) {
      all.push(eb('profile_id', 'in', eb.selectFrom('profiles').select('profiles.id').where('profiles.name', '=', filter.profile)));
    }
    for (const t of filter.tags ?? []) {
      let sub = eb.selectFrom('machine_tags').select('machine_id').where('key', '=', t.key);
      if (t.value !== undefined) sub = sub.where('value', '=', t.value);
      all.push(eb('id', 'in', sub));
    }
    if (filter.q) {
      const pattern = `%${escapeLike(filter.q)}%`;
      const like = dialect === 'postgres' ? sql<boolean>`ilike` : sql<boolean>`like`;
      const match = (col: string) => sql<boolean>`${sql.ref(col)} ${like} ${pattern} escape '\\'`;
      const matchRow = (t: string) => eb.or([match(`${t}.name`), match(`${t}.serial`), match(`${t}.asset_tag`), match(`${t}.system_uuid`)]);
      if (dialect === 'postgres') {
        // One id list the planner can join (a semi-join), each half served by the pg_trgm
        // indexes (migration 0016) through a bitmap scan; without them, two scans as before.
        // A whole MAC in canonical form is found in a stored (canonical) MAC only by equality,
        // which the primary key answers: a MAC's trigrams are shared by most of a fleet's.
        const wholeMac = FULL_MAC_RE.test(filter.q) ? filter.q.toLowerCase() : null;
        all.push(
          eb('id', 'in', eb.selectFrom('machines as s').select('s.id').where(matchRow('s'))
            .unionAll(eb.selectFrom('machine_macs').select('machine_id as id').where((e) => (wholeMac ? e('mac', '=', wholeMac) : match('mac'))))),
        );
      } else if ([...filter.q].length >= 3) {
        // The trigram FTS5 table (migration 0016) gives the candidates: a phrase of the
        // query's trigrams is its substrings. The exact LIKE test then keeps SQLite's LIKE
        // semantics (ASCII case folding, one MAC at a time) on those few rows.
        const phrase = `"${filter.q.replace(/"/g, '""')}"`;
        all.push(
          eb('id', 'in', eb.selectFrom('machine_search_rows').select('machine_search_rows.machine_id').where('seq', 'in',
            eb.selectFrom(sql<{ rowid: number }>`machine_search`.as('fts')).select(sql<number>`rowid`.as('rowid')).where(sql<boolean>`machine_search match ${phrase}`))),
          eb.or([matchRow('machines'), eb.exists(eb.selectFrom('machine_macs as mm').select('mm.mac').whereRef('mm.machine_id', '=', 'machines.id').where(match('mm.mac')))]),
        );
      } else {
        // Under three characters there is no trigram: two narrow scans (ix_machines_search,
        // machine_macs).
        all.push(
          eb.or([
            eb('id', 'in', eb.selectFrom('machines as s').select('s.id').where(matchRow('s'))),
            eb('id', 'in', eb.selectFrom('machine_macs').select('machine_id').where(match('mac'))),
          ]),
        );
      }
    }
    return eb.and(all);
  };
}

/** One page of machines ordered by name, after `cursor` (the last name of the previous page). */
export async function listMachineRows(
  db: Db,
  dialect: Dialect,
  filter: MachineFilter,
  page: { limit: number; after?: string; withFacts?: boolean },
): Promise<MachinesTable[]> {
  const driver = filter.tags?.find((t) => t.value !== undefined);
  if (driver) {
    // A tag with a value: its machines in name order straight from ix_machine_tags_kv_name
    // (migration 0018), the other conditions tested on each, so a page reads about a page of
    // rows whether the tag is on ten machines or on half the fleet.
    const rest = { ...filter, tags: filter.tags!.filter((t) => t !== driver) };
    let q = db
      .selectFrom('machine_tags as drv')
      .innerJoin('machines', 'machines.id', 'drv.machine_id')
      .select(SUMMARY_COLUMNS.map((c) => `machines.${c}` as const))
      .select((eb) => (page.withFacts ? eb.ref('machines.facts').as('facts') : sql<string | null>`null`.as('facts')))
      .where('drv.key', '=', driver.key)
      .where('drv.value', '=', driver.value!)
      // Unqualified names in the filter are the machine's: machine_tags shares none of them.
      .where(filterWhere(rest, dialect) as unknown as MachineCondition);
    if (page.after !== undefined) q = q.where('drv.machine_name', '>', page.after);
    return q.orderBy('drv.machine_name').limit(page.limit).execute();
  }
  let q = db
    .selectFrom('machines')
    .select(SUMMARY_COLUMNS)
    .select((eb) => (page.withFacts ? eb.ref('facts').as('facts') : sql<string | null>`null`.as('facts')))
    .where(filterWhere(filter, dialect));
  if (page.after !== undefined) q = q.where('name', '>', page.after);
  return q.orderBy('name').limit(page.limit).execute();
}

/** How many machines the filter matches in each provision state (states with none left out). */
export async function countMachineRowsByState(db: Db, dialect: Dialect, filter: MachineFilter): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('machines')
    .select((eb) => ['state', eb.fn.countAll().as('n')])
    .where(filterWhere(filter, dialect))
    .groupBy('state')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
}

export async function countMachines(db: Db): Promise<number> {
  const r = await db.selectFrom('machines').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}


/**
 * How many machines are in each (state, power state): one GROUP BY that reads only the
 * ix_machines_state_power index (an index-only scan on PostgreSQL, a covering index on
 * SQLite), so a metrics scrape stays cheap with 100 000 machines.
 */
export async function countMachinesByStateAndPower(db: Db): Promise<{ state: string; power: string; count: number }[]> {
  const rows = await db
    .selectFrom('machines')
    .select(['state', 'power_state'])
    .select((eb) => eb.fn.countAll().as('n'))
    .groupBy(['state', 'power_state'])
    .execute();
  return rows.map((r) => ({ state: r.state, power: r.power_state, count: Number(r.n) }));
}
