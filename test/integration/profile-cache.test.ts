import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { Store } from '../../src/store/database.js';
import { systemClock } from '../../src/core/clock.js';
import { ProfileService } from '../../src/profiles/profile-service.js';
import { ProfileCache } from '../../src/profiles/profile-cache.js';
import { takeQuota } from '../../src/profiles/rows.js';

/**
 * The cache of compiled profiles (profiles/profile-cache.ts) with two controllers on one
 * database: every change made through controller A is seen by controller B's next match,
 * quotas are always read afresh, and a quota taken does not count as a change of definition.
 * Each controller is a store of its own (its own connections), as two processes would have.
 */
describe.each(backends)('the profile cache across two controllers on $name', (backend) => {
  let db: Awaited<ReturnType<typeof backend.create>>;
  let a: Store;
  let b: Store;
  let profilesA: ProfileService;
  const cacheB = new ProfileCache();
  const readB = () => b.transaction((trx) => cacheB.read(trx));
  const version = async () => Number((await b.db.selectFrom('profiles_version').select('version').executeTakeFirstOrThrow()).version);
  const spec = (cores: string) => [['cpu', 'physical_0', 'cores', cores]];

  beforeAll(async () => {
    db = await backend.create();
    a = await Store.open({ url: db.url });
    b = await Store.open({ url: db.url });
    profilesA = new ProfileService(a, systemClock);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
  });

  it('sees profiles created, changed and deleted through the other controller at its next read', async () => {
    expect((await readB()).profiles).toEqual([]);
    await profilesA.apply({ pools: [{ name: 'rack-1', generate: { hostname: 'n1-4' } }], profiles: [{ name: 'small', quota: 3, pool: 'rack-1', spec: spec('8') }] });
    const first = await readB();
    expect(first.profiles.map((p) => [p.name, p.spec])).toEqual([['small', spec('8')]]);
    expect(first.poolNames.get(first.profiles[0]!.poolId!)).toBe('rack-1');

    await profilesA.putProfile('small', { name: 'small', quota: 3, pool: 'rack-1', spec: spec('16') });
    expect((await readB()).profiles.map((p) => p.spec)).toEqual([spec('16')]);

    await profilesA.apply({ pools: [], profiles: [{ name: 'big', position: 1, spec: spec('32') }] });
    expect((await readB()).profiles.map((p) => p.name)).toEqual(['big', 'small']);
    await profilesA.deleteProfile('big');
    expect((await readB()).profiles.map((p) => p.name)).toEqual(['small']);
  });

  it('reads quotas afresh; taking one does not change the definitions version', async () => {
    const { profiles } = await readB();
    const id = profiles[0]!.id;
    const before = await version();
    expect(await a.transaction((trx) => takeQuota(trx, id))).toBe(true);
    expect(await version()).toBe(before);
    const after = await readB();
    expect(after.quotas.get(id)).toBe(2);
    // The definitions came from the cache, whose copy of the row still says what it said when read.
    expect(after.profiles).toBe(profiles);
  });

  it('sees a pool renamed through the other controller', async () => {
    await a.db.updateTable('pools').set({ name: 'rack-one' }).where('name', '=', 'rack-1').execute();
    const { profiles, poolNames } = await readB();
    expect(poolNames.get(profiles[0]!.poolId!)).toBe('rack-one');
  });
});
