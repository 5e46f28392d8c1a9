import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * machine-rows.ts is the only writer of the machines table, so every update bumps `version`
 * (a reliable change counter). This test reads src/ and fails on any other file that writes
 * the table, through the query builder or in raw SQL.
 */
const SRC = join(import.meta.dirname, '..');
const WRITER = 'inventory/machine-rows.ts';
const SELF = 'inventory/machine-writers.test.ts';

const BUILDER = /\b(updateTable|insertInto|deleteFrom|replaceInto|mergeInto)\(\s*['"`]machines(\s+as\s+\w+)?['"`]\s*\)/g;
const RAW_SQL = /\b(update\s+"?machines"?(\s+as\s+\w+)?\s+set|insert\s+(or\s+\w+\s+)?into\s+"?machines"?[\s(]|delete\s+from\s+"?machines"?\b)/gi;

/** Every write to the machines table in `text`, as `line: code`. */
export function machineWrites(text: string): string[] {
  const found: string[] = [];
  const lines = text.split('\n');
  for (const re of [BUILDER, RAW_SQL]) {
    for (const m of text.matchAll(re)) {
      const line = text.slice(0, m.index).split('\n').length;
      found.push(`${line}: ${lines[line - 1]!.trim()}`);
    }
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : /\.(ts|mts|js|mjs)$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

describe('machines table writers', () => {
  it('only machine-rows.ts writes the machines table', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const rel = relative(SRC, file).split('\\').join('/');
      if (rel === WRITER || rel === SELF) continue;
      for (const w of machineWrites(readFileSync(file, 'utf8'))) offenders.push(`src/${rel}:${w}`);
    }
    expect(offenders, 'write machines through updateMachineRow/updateMachineRows/insertMachineRow/deleteMachineRow').toEqual([]);
    // The writer itself is seen by the scan (so the scan is not blind).
    expect(machineWrites(readFileSync(join(SRC, WRITER), 'utf8')).length).toBeGreaterThanOrEqual(3);
  });

  it('catches each way of writing the table, and leaves reads and other tables alone', () => {
    const writes = [
      "await trx.updateTable('machines').set({ last_stage: s }).where('id', '=', id).execute();",
      'await db\n  .updateTable("machines")\n  .set({ power_state: observed })',
      "db.updateTable('machines as m').set({ owner: null })",
      "await trx.insertInto('machines').values(row).execute();",
      "await trx.deleteFrom('machines').where('id', '=', id).execute();",
      'await sql`UPDATE machines SET owner = null`.execute(db);',
      'await sql`update "machines" set version = 1`.execute(db);',
      'await sql`insert into machines (id) values (${id})`.execute(db);',
      'await sql`DELETE FROM machines WHERE id = ${id}`.execute(db);',
    ];
    for (const w of writes) expect(machineWrites(w), w).toHaveLength(1);
    const others = [
      "db.selectFrom('machines').selectAll()",
      "trx.updateTable('machine_macs').set({ mac })",
      "trx.deleteFrom('machine_tags').where('machine_id', '=', id)",
      "trx.insertInto('machines_archive').values(row)",
      "throw new PlinthError('conflict', 'delete machines before their appliance')",
    ];
    for (const o of others) expect(machineWrites(o), o).toEqual([]);
  });
});
