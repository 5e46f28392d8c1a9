import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { SUMMARY_COLUMNS } from '../../src/inventory/machine-rows.js';

/**
 * The floor under a page of the machine list: the database driver alone reading the rows of
 * one page (the columns Plinth's list reads, in name order, 101 rows: a page and the one that
 * says there is a next) and their MACs and tags, with prepared hand-written SQL, none of
 * Plinth's code, no HTTP. Returns the CPU-milliseconds of this process per page, the mean of
 * `rounds` reads after a warm-up: what any controller built on this driver spends on a page
 * before it answers.
 */
export async function rawPageCpuMs(url: string, rounds = 300): Promise<number> {
  const page = `select ${SUMMARY_COLUMNS.join(', ')} from machines order by name limit 101`;
  const hydrate = (n: number) => [
    `select machine_id, mac from machine_macs where machine_id in (${Array.from({ length: n }, (_, i) => (pgUrl ? `$${i + 1}` : '?')).join(', ')})`,
    `select machine_id, key, value from machine_tags where machine_id in (${Array.from({ length: n }, (_, i) => (pgUrl ? `$${i + 1}` : '?')).join(', ')})`,
  ];
  const pgUrl = /^postgres(ql)?:\/\//.test(url);
  const measure = async (read: () => Promise<void> | void): Promise<number> => {
    for (let i = 0; i < 30; i++) await read();
    const c0 = process.cpuUsage();
    for (let i = 0; i < rounds; i++) await read();
    const c = process.cpuUsage(c0);
    return Math.round(((c.user + c.system) / 1000 / rounds) * 1000) / 1000;
  };
  if (!pgUrl) {
    const db = new BetterSqlite3(url, { readonly: true });
    try {
      const rows = db.prepare(page);
      const [macs, tags] = hydrate(101).map((q) => db.prepare(q));
      return await measure(() => {
        const ids = (rows.all() as { id: string }[]).map((r) => r.id);
        macs!.all(...ids);
        tags!.all(...ids);
      });
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const [macs, tags] = hydrate(101);
    return await measure(async () => {
      const ids = (await client.query<{ id: string }>({ name: 'page', text: page })).rows.map((r) => r.id);
      await client.query({ name: 'macs', text: macs!, values: ids });
      await client.query({ name: 'tags', text: tags!, values: ids });
    });
  } finally {
    await client.end();
  }
}
