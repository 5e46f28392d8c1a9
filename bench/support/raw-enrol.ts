import { randomUUID } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';

/**
 * The yardstick for enrolment: the rows an enrolment writes (the machine, its MAC, two tags,
 * the enrolment event), written with hand-written SQL and prepared statements, with none of
 * Plinth's code: no HTTP, no identity checks, no query builder. `perTransaction` machines per
 * transaction (1: what a lone API request costs the database; more: group commit), written
 * by `clients` concurrent writers (PostgreSQL; SQLite has one writer). The database must have
 * Plinth's schema (triggers and indexes included), so the same work is measured.
 */
export async function rawEnrolRate(url: string, opts: { machines: number; perTransaction: number; clients: number; first: number }): Promise<number> {
  const rows = (i: number) => {
    const id = randomUUID();
    const at = new Date().toISOString();
    const mac = `0e:${((i >> 24) & 255).toString(16).padStart(2, '0')}:${((i >> 16) & 255).toString(16).padStart(2, '0')}:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    return {
      machine: [id, `raw-${i}`, `R${i}`, 'Supermicro', 'enrolled', at, at, at],
      mac: [mac, id],
      tags: [[id, 'rack', `r${i % 50}`, `raw-${i}`], [id, 'pod', `p${i % 4}`, `raw-${i}`]],
      event: ['machine', at, id, 'operator:bench', 'enroll', null, 'enrolled', null, null],
    };
  };
  const q = {
    machine: 'insert into machines (id, name, serial, manufacturer, state, state_entered_at, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)',
    mac: 'insert into machine_macs (mac, machine_id) values (?, ?)',
    tag: 'insert into machine_tags (machine_id, key, value, machine_name) values (?, ?, ?, ?)',
    event: 'insert into events (type, at, machine_id, actor, action, from_state, to_state, reason, details) values (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  };
  const batches: number[][] = [];
  for (let i = 0; i < opts.machines; i += opts.perTransaction) {
    batches.push(Array.from({ length: Math.min(opts.perTransaction, opts.machines - i) }, (_, k) => opts.first + i + k));
  }
  const started = performance.now();
  if (!/^postgres(ql)?:\/\//.test(url)) {
    const db = new BetterSqlite3(url);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    const s = { machine: db.prepare(q.machine), mac: db.prepare(q.mac), tag: db.prepare(q.tag), event: db.prepare(q.event) };
    for (const batch of batches) {
      db.exec('begin immediate');
      for (const i of batch) {
        const r = rows(i);
        s.machine.run(r.machine);
        s.mac.run(r.mac);
        for (const t of r.tags) s.tag.run(t);
        s.event.run(r.event);
      }
      db.exec('commit');
      // Let the event loop turn, as a server answering requests would.
      await new Promise((r) => setImmediate(r));
    }
    db.close();
  } else {
    const pool = new pg.Pool({ connectionString: url, max: opts.clients });
    pool.on('error', () => undefined);
    const dollar = (text: string) => { let n = 0; return text.replace(/\?/g, () => `$${++n}`); };
    let next = 0;
    await Promise.all(
      Array.from({ length: opts.clients }, async () => {
        const c = await pool.connect();
        try {
          for (;;) {
            const batch = batches[next++];
            if (!batch) return;
            await c.query('begin');
            for (const i of batch) {
              const r = rows(i);
              await c.query({ name: 'raw-machine', text: dollar(q.machine), values: r.machine });
              await c.query({ name: 'raw-mac', text: dollar(q.mac), values: r.mac });
              for (const t of r.tags) await c.query({ name: 'raw-tag', text: dollar(q.tag), values: t });
              await c.query({ name: 'raw-event', text: dollar(q.event), values: r.event });
            }
            await c.query('commit');
          }
        } finally {
          c.release();
        }
      }),
    );
    await pool.end();
  }
  return Math.round(opts.machines / ((performance.now() - started) / 1000));
}
