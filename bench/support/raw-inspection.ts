import { createHash, randomUUID } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import type { Facts } from '../../src/core/facts.js';

/**
 * The floor under an inspection: the database driver alone writing what an inspection must
 * record, with prepared hand-written SQL on Plinth's own schema (a database Plinth migrated),
 * none of Plinth's code, no HTTP, no matching. Three transactions, one per request an
 * inspection makes:
 * - boot: look the machine up by serial and MAC, insert it, its MAC, its run, two events,
 *   the boot attempt and its trace line;
 * - hello: read the run's token, move the machine and the run on, one event;
 * - facts: read the run's token and the machine, take one of a profile's quota, claim the
 *   first free entry of its pool, store the facts (serialized here) with the match, finish
 *   the run, two events, a trace line.
 * Returns the CPU-milliseconds of this process per inspection, the mean of `count`
 * inspections one after another after a warm-up: what any controller on this driver and
 * schema spends on an inspection's writes before HTTP, JSON parsing and decisions.
 */
export async function rawInspectionCpuMs(url: string, facts: (i: number) => Facts, count = 500): Promise<number> {
  const isPg = /^postgres(ql)?:\/\//.test(url);
  const db = isPg ? await pgExec(url) : sqliteExec(url);
  try {
    const now = () => new Date().toISOString();
    const poolId = `raw-pool-${randomUUID()}`;
    const profileId = `raw-profile-${randomUUID()}`;
    const warm = 30;
    await db.tx(async (q) => {
      await q('setup-pool', 'insert into pools (id, name, created_at, updated_at) values (?, ?, ?, ?)', [poolId, poolId, now(), now()]);
      for (let p = 0; p < count + warm; p++) {
        const data = JSON.stringify({ hostname: `raw${p}` });
        await q('setup-entry', 'insert into pool_entries (id, pool_id, position, data, original, used) values (?, ?, ?, ?, ?, 0)', [randomUUID(), poolId, p, data, data]);
      }
      await q('setup-profile', "insert into profiles (id, name, position, spec, quota, pool_id, release_returns_entry, deploy, created_at, updated_at) values (?, ?, 999, '[]', ?, ?, 0, '{}', ?, ?)", [profileId, profileId, count + warm, poolId, now(), now()]);
    });
    const one = async (i: number) => {
      const f = facts(1_000_000 + i);
      const id = randomUUID();
      const runId = randomUUID();
      const mac = f.nics[0]!.mac;
      const serial = `${f.system.serial}-raw`;
      await db.tx(async (q) => {
        await q('find', 'select id from machines where serial = ? or id in (select machine_id from machine_macs where mac = ?)', [serial, mac]);
        const at = now();
        await q('machine', "insert into machines (id, name, serial, manufacturer, state, state_entered_at, current_run_id, created_at, updated_at) values (?, ?, ?, ?, 'inspecting', ?, ?, ?, ?)", [id, `raw-${id}`, serial, f.system.manufacturer, at, runId, at, at]);
        await q('mac', 'insert into machine_macs (mac, machine_id) values (?, ?)', [mac, id]);
        await q('run', "insert into runs (id, machine_id, kind, status, steps, params, created_by, created_at, token_epoch, log_bytes) values (?, ?, 'inspect', 'pending', '[]', '{}', 'system', ?, 0, 0)", [runId, id, at]);
        await q('events2', "insert into events (type, at, machine_id, actor, action, to_state) values ('machine.enrolled', ?, ?, 'system', 'enrol', 'enrolled'), ('machine.transition', ?, ?, 'system', 'inspect', 'inspecting')", [at, id, at, id]);
        await q('attempt', "insert into boot_attempts (id, machine_id, run_id, started_at, decision) values (?, ?, ?, ?, 'installer')", [`${runId}-a`, id, runId, at]);
        await q('trace', 'insert into boot_trace (machine_id, attempt_id, run_id, at, stage) values (?, ?, ?, ?, ?)', [id, `${runId}-a`, runId, at, 'script']);
      });
      await db.tx(async (q) => {
        await q('token', 'select token_hash, token_epoch from runs where id = ?', [runId]);
        const at = now();
        await q('hello-machine', "update machines set state = 'inspect-wait', state_entered_at = ?, updated_at = ?, version = version + 1 where id = ?", [at, at, id]);
        await q('hello-run', "update runs set status = 'running', started_at = ?, steps = ? where id = ?", [at, '[{"name":"boot-installer","status":"succeeded"}]', runId]);
        await q('event1', "insert into events (type, at, machine_id, actor, action, to_state) values ('machine.transition', ?, ?, 'agent', 'installer-started', 'inspect-wait')", [at, id]);
      });
      await db.tx(async (q) => {
        await q('token', 'select token_hash, token_epoch from runs where id = ?', [runId]);
        await q('read', 'select state, version, current_run_id from machines where id = ?', [id]);
        const at = now();
        await q('quota', 'update profiles set quota = quota - 1 where id = ? and quota > 0', [profileId]);
        const entry = await q('entry', 'select id, data from pool_entries where pool_id = ? and machine_id is null order by position limit 1', [poolId]);
        const entryId = (entry[0] as { id: string }).id;
        await q('claim', 'update pool_entries set machine_id = ?, used = 1, allocated_at = ? where id = ?', [id, at, entryId]);
        await q('facts', "update machines set facts = ?, state = 'available', current_run_id = null, profile_id = ?, pool_entry_id = ?, match_vars = ?, quota_held = 1, matched_at = ?, state_entered_at = ?, updated_at = ?, version = version + 1 where id = ?", [JSON.stringify(f), profileId, entryId, '{}', at, at, at, id]);
        await q('finish', "update runs set status = 'succeeded', finished_at = ?, steps = ? where id = ?", [at, '[{"name":"report-facts","status":"succeeded"}]', runId]);
        await q('events2', "insert into events (type, at, machine_id, actor, action, to_state) values ('machine.matched', ?, ?, 'agent', 'match', 'inspect-wait'), ('machine.transition', ?, ?, 'agent', 'inspect-done', 'available')", [at, id, at, id]);
        await q('trace', 'insert into boot_trace (machine_id, attempt_id, run_id, at, stage) values (?, ?, ?, ?, ?)', [id, `${runId}-a`, runId, at, 'facts']);
      });
    };
    for (let i = 0; i < warm; i++) await one(i);
    const c0 = process.cpuUsage();
    for (let i = warm; i < warm + count; i++) await one(i);
    const c = process.cpuUsage(c0);
    return Math.round(((c.user + c.system) / 1000 / count) * 100) / 100;
  } finally {
    await db.close();
  }
}

type Query = (name: string, text: string, values: unknown[]) => Promise<unknown[]>;
interface Exec {
  tx(fn: (q: Query) => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

function sqliteExec(path: string): Exec {
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 15000');
  const prepared = new Map<string, BetterSqlite3.Statement>();
  const q: Query = async (name, text, values) => {
    let s = prepared.get(name + text);
    if (!s) prepared.set(name + text, (s = db.prepare(text)));
    return s.reader ? s.all(...values) : (s.run(...values), []);
  };
  return {
    // As Plinth's SQLite transactions: the write lock taken at the start.
    async tx(fn) {
      db.exec('begin immediate');
      try {
        await fn(q);
        db.exec('commit');
      } catch (e) {
        db.exec('rollback');
        throw e;
      }
    },
    async close() {
      db.close();
    },
  };
}

async function pgExec(url: string): Promise<Exec> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const q: Query = async (name, text, values) => {
    let n = 0;
    const r = await client.query({ name: `raw-${name}-${createHash('sha1').update(text).digest('hex').slice(0, 12)}`, text: text.replace(/\?/g, () => `$${++n}`), values });
    return r.rows;
  };
  return {
    async tx(fn) {
      await client.query('begin');
      try {
        await fn(q);
        await client.query('commit');
      } catch (e) {
        await client.query('rollback');
        throw e;
      }
    },
    close: () => client.end(),
  };
}
