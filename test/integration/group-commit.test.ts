import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { GroupCommit } from '../../src/store/group-commit.js';
import type { Db } from '../../src/store/database.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/**
 * Group commit (store/group-commit.ts): many callers' work in one transaction, each in its own
 * savepoint. A failing caller must lose its own writes only; a failed batch must run everyone
 * again alone; concurrent API enrolments (batched on SQLite) keep their 4xx per field.
 */
describe.each(backends)('group commit on $name', (backend) => {
  let t: TC;
  const actor = { kind: 'operator' as const, name: 'test' };
  beforeAll(async () => {
    t = await freshController(backend);
  });
  afterAll(async () => t?.close());

  const machineNames = async (prefix: string) =>
    (await t.controller.services.store.db.selectFrom('machines').select('name').where('name', 'like', `${prefix}%`).orderBy('name').execute()).map((r) => r.name);
  /** A GroupCommit on the controller's store that counts its transactions; the `failAt`th fails at its end. */
  const counting = (failAt = 0) => {
    const { store } = t.controller.services;
    const seen = { transactions: 0 };
    const group = new GroupCommit(
      (fn) => {
        const n = ++seen.transactions;
        return store.transaction(async (trx) => {
          const r = await fn(trx);
          // What a commit that fails looks like to the batch: the whole transaction rolls back.
          if (n === failAt) throw new Error('the commit failed');
          return r;
        });
      },
      { maxBatch: 100 },
    );
    return { group, seen };
  };
  const enrolIn = (name: string, then?: () => void) => async (trx: Db) => {
    const m = await t.controller.services.inventory.createIn(trx, { name, identity: { macs: [] }, tags: { k: name } }, actor);
    then?.();
    return m.name;
  };

  it('commits the callers that arrive together in one transaction; one that fails after writing loses its writes alone', async () => {
    const { group, seen } = counting();
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        group.run(
          enrolIn(`gc-a-${String(i).padStart(2, '0')}`, () => {
            if (i === 7) throw new Error('refused after its rows were written');
          }),
        ),
      ),
    );
    // The first caller starts a batch alone; the other 19 arrived while it ran.
    expect(seen.transactions).toBe(2);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.message)).toEqual(['refused after its rows were written']);
    const expected = Array.from({ length: 20 }, (_, i) => `gc-a-${String(i).padStart(2, '0')}`).filter((n) => n !== 'gc-a-07');
    expect(await machineNames('gc-a-')).toEqual(expected);
    const { store } = t.controller.services;
    expect(await store.db.selectFrom('machine_tags').select('value').where('value', '=', 'gc-a-07').execute()).toEqual([]);
    const events = await store.db.selectFrom('events').innerJoin('machines', 'machines.id', 'events.machine_id').select('machines.name').where('machines.name', 'like', 'gc-a-%').execute();
    expect(events.map((e) => e.name).sort()).toEqual(expected);
  });

  it('runs every caller again alone when the batch transaction fails, keeping each once', async () => {
    const { group, seen } = counting(2);
    const first = group.run(enrolIn('gc-b-00'));
    const rest = Array.from({ length: 9 }, (_, i) => group.run(enrolIn(`gc-b-0${i + 1}`)));
    // The first batch (gc-b-00 alone) commits as it should, the second one fails at its end.
    await first;
    await Promise.all(rest);
    expect(seen.transactions).toBe(1 + 1 + 9);
    expect(await machineNames('gc-b-')).toEqual(Array.from({ length: 10 }, (_, i) => `gc-b-0${i}`));
  });

  it('answers concurrent API enrolments each on its own: the good ones enrolled, a taken name or MAC 409 naming its field, bad input 400 naming it', async () => {
    await t.api('POST', '/api/v1/machines', { name: 'gc-c-held', identity: { macs: ['52:54:00:c0:00:ff'] } });
    const bodies = Array.from({ length: 40 }, (_, i) => {
      if (i % 10 === 3) return { name: 'gc-c-held' };
      if (i % 10 === 6) return { name: `gc-c-mac-${i}`, identity: { macs: ['52:54:00:c0:00:ff'] } };
      if (i % 10 === 9) return { name: `gc-c-bad-${i}`, identity: { macs: ['not-a-mac'] } };
      return { name: `gc-c-${String(i).padStart(2, '0')}`, identity: { macs: [`52:54:00:c0:01:${i.toString(16).padStart(2, '0')}`] }, tags: { rack: 'r1' } };
    });
    const replies = await Promise.all(bodies.map((b) => t.api('POST', '/api/v1/machines', b)));
    replies.forEach((r, i) => {
      const field = { 3: 'name', 6: 'identity.macs', 9: null }[i % 10 as 3 | 6 | 9];
      if (i % 10 === 3 || i % 10 === 6) {
        expect(r.statusCode, bodies[i]!.name).toBe(409);
        expect(r.json().error.details.field).toBe(field);
      } else if (i % 10 === 9) {
        expect(r.statusCode).toBe(400);
        expect(r.json().error.message).toContain('identity.macs[0]');
      } else {
        expect(r.statusCode, r.body).toBe(201);
        expect(r.json()).toMatchObject({ name: bodies[i]!.name, tags: { rack: 'r1' } });
      }
    });
    const good = bodies.filter((_, i) => ![3, 6, 9].includes(i % 10)).map((b) => b.name);
    expect(await machineNames('gc-c-')).toEqual(['gc-c-held', ...good].sort());
    const { store } = t.controller.services;
    const macs = await store.db.selectFrom('machine_macs').innerJoin('machines', 'machines.id', 'machine_macs.machine_id').select(['machines.name', 'mac']).where('machines.name', 'like', 'gc-c-%').execute();
    expect(macs).toHaveLength(good.length + 1);
    expect(macs.find((m) => m.mac === '52:54:00:c0:00:ff')?.name).toBe('gc-c-held');
  });
});
