import { createHash, createHmac } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import type { Db, Store } from '../store/database.js';
import { fromJson, toJson } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { PlinthError } from '../core/errors.js';
import { cacheFileUrl, type SiteCacheAnswer, type SiteCacheFetch, type SiteCacheReport } from '../protocol/site-cache.js';
import { currentAttempt, recordStage } from '../runs/trace.js';

/**
 * Finds the file the controller serves under a sha256, or null when it has none; `stage` names
 * its download in the boot trace (`kernel`, `initrd`, `image`, as the controller's own routes do).
 */
export type SiteFileResolver = (sha256: string) => Promise<{ path: string; stage: string } | null>;

/** A site's cache as the controller points machines at it. */
export interface SiteCache {
  site: string;
  url: string;
  /** A machine's URL of one file there, for one run (see protocol/site-cache.ts). */
  fileUrl(f: { sha256: string; name: string; runId: string }): string;
}

export interface SiteCacheStatus {
  url: string;
  lastReport: string;
  /** Whether the controller names the cache to machines now (reports keep coming). */
  inUse: boolean;
  report: SiteCacheReport | null;
}

export interface SiteCachesDeps {
  store: Store;
  clock: Clock;
  /** Root of the per-site URL keys (SecretBox.deriveKey(SITE_CACHE_KEY_PURPOSE)). */
  keyRoot: Buffer;
  /** A cache not heard from for this long is passed over: machines fetch from the controller. */
  staleMs?: number;
  /** How long a cache URL stays valid (the run check bounds it further). */
  urlLifetimeSeconds?: number;
}

export const SITE_CACHE_KEY_PURPOSE = 'site-cache-urls';
/** Managers report every 15 s; three missed reports and the controller stops naming the cache. */
export const SITE_CACHE_STALE_MS = 60_000;

/**
 * Site caches as the controller sees them: which cache (if any) serves a machine — the one
 * of its appliance's site, while that site's manager keeps reporting — the signed URLs
 * machines get for it, the files a cache may fetch (by sha256, from resolvers the composition
 * root registers: images, the installer, sidecar files), and whether a run may still fetch.
 */
export class SiteCaches {
  private readonly resolvers: SiteFileResolver[] = [];
  private readonly fileLists: (() => { path: string; stage: string }[])[] = [];
  private readonly hashes = new Map<string, { size: number; mtimeMs: number; sha256: Promise<string> }>();
  private readonly staleMs: number;
  private readonly lifetimeS: number;

  constructor(private readonly d: SiteCachesDeps) {
    this.staleMs = d.staleMs ?? SITE_CACHE_STALE_MS;
    this.lifetimeS = d.urlLifetimeSeconds ?? 24 * 3600;
  }

  addResolver(r: SiteFileResolver): void {
    this.resolvers.push(r);
  }

  /** A resolver over files known by path (the installer's kernel and initramfs): hashed once per size and mtime; prefetched while a site has runs. */
  addFiles(files: () => { path: string; stage: string }[]): void {
    this.fileLists.push(files);
    this.addResolver(async (sha256) => {
      for (const f of files()) if ((await this.sha256Of(f.path).catch(() => null)) === sha256) return f;
      return null;
    });
  }

  private async installerHashes(): Promise<string[]> {
    const out: string[] = [];
    for (const list of this.fileLists) for (const f of list()) out.push(...[await this.sha256Of(f.path).catch(() => null)].filter((x): x is string => x !== null));
    return out;
  }

  /** The sha256 of a file, hashed again only when its size or mtime changed. */
  sha256Of(path: string): Promise<string> {
    const st = statSync(path);
    const known = this.hashes.get(path);
    if (known && known.size === st.size && known.mtimeMs === st.mtimeMs) return known.sha256;
    const sha256 = (async () => {
      const h = createHash('sha256');
      for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) h.update(chunk as Buffer);
      return h.digest('hex');
    })();
    sha256.catch(() => this.hashes.delete(path));
    this.hashes.set(path, { size: st.size, mtimeMs: st.mtimeMs, sha256 });
    return sha256;
  }

  /** The key a site's cache URLs are signed with: the manager of that site alone gets it. */
  keyFor(site: string): Buffer {
    return createHmac('sha256', this.d.keyRoot).update(`site:${site}`).digest();
  }

  /** A site's manager reports its cache; the answer is the key of the site's URLs. */
  async report(site: string, report: SiteCacheReport, address: string): Promise<SiteCacheAnswer> {
    const { db } = this.d.store;
    const now = iso(this.d.clock.now());
    const cache = { cache_url: report.url.replace(/\/+$/, ''), cache_report: toJson(report), cache_seen: now };
    const updated = await db.updateTable('managers').set({ ...cache, address }).where('site', '=', site).executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0) {
      // Before the manager's first claim; a concurrent first claim inserting the row wins, and the next report lands.
      await db.insertInto('managers').values({ site, last_seen: now, version: null, address, ...cache }).execute().catch(() => undefined);
    }
    return { key: this.keyFor(site).toString('base64url'), prefetch: await this.wanted(site) };
  }

  /**
   * What the site's machines will fetch soon: with any run under way on a machine of the site,
   * the installer's files, and the image of each deploy the controller serves (not one
   * fetched from an `imageUrl`). The cache fetches them while the machines power on and boot.
   */
  private async wanted(site: string): Promise<string[]> {
    const runs = await this.runsWithSite()
      .select(['runs.kind', 'runs.params'])
      .where('appliances.site', '=', site)
      .where('runs.finished_at', 'is', null)
      .execute();
    if (runs.length === 0) return [];
    const out = new Set<string>();
    for (const r of runs) {
      const p = fromJson<{ method?: string; imageSha256?: string | null; imageUrl?: string | null }>(r.params, {});
      if (r.kind === 'deploy' && p.method === 'image' && p.imageSha256 && !p.imageUrl) out.add(p.imageSha256);
    }
    for (const sha256 of await this.installerHashes()) out.add(sha256);
    return [...out];
  }

  /** The cache serving a machine now: its appliance's site's, if that manager has one and reported within the stale time. */
  async forMachine(db: Db, machineId: string): Promise<SiteCache | null> {
    const row = await db
      .selectFrom('machines')
      .innerJoin('appliances', 'appliances.id', 'machines.appliance_id')
      .innerJoin('managers', 'managers.site', 'appliances.site')
      .select(['managers.site', 'managers.cache_url', 'managers.cache_seen'])
      .where('machines.id', '=', machineId)
      .executeTakeFirst();
    if (!row?.cache_url || !row.cache_seen || !this.fresh(row.cache_seen)) return null;
    const key = this.keyFor(row.site);
    const expires = Math.floor(this.d.clock.now().getTime() / 1000) + this.lifetimeS;
    const base = row.cache_url;
    return { site: row.site, url: base, fileUrl: (f) => cacheFileUrl(base, key, { ...f, expires }) };
  }

  /** The file a site's cache asked for by sha256; not_found when no resolver has it. */
  async file(sha256: string): Promise<{ path: string; stage: string }> {
    for (const r of this.resolvers) {
      const found = await r(sha256);
      if (found) return found;
    }
    throw new PlinthError('not_found', `no file with sha256 ${sha256} is served by this controller`, { details: { sha256 } });
  }

  /**
   * A site's cache served a run's file: recorded in the machine's boot trace like the
   * controller's own downloads (stage `kernel`, `initrd`, `image`…, with the site and whether
   * the cache held it). A run that is not on a machine of this site records nothing.
   */
  async recordFetch(site: string, f: SiteCacheFetch): Promise<void> {
    const row = await this.runsWithSite().select(['runs.machine_id', 'appliances.site']).where('runs.id', '=', f.runId).executeTakeFirst();
    if (!row || row.site !== site) return;
    const stage = (await this.file(f.sha256).catch(() => null))?.stage ?? 'file';
    await this.d.store.transaction(async (trx) =>
      recordStage(trx, {
        machineId: row.machine_id,
        attemptId: await currentAttempt(trx, row.machine_id, f.runId),
        runId: f.runId,
        at: iso(this.d.clock.now()),
        stage,
        detail: { site, cache: f.cache, status: f.status, ...(f.range ? { range: f.range } : {}) },
      }),
    );
  }

  /** Whether a run is still under way on a machine of this site (the controller would still serve its files). */
  async runActive(site: string, runId: string): Promise<boolean> {
    const row = await this.runsWithSite().select(['runs.finished_at', 'appliances.site']).where('runs.id', '=', runId).executeTakeFirst();
    return !!row && row.finished_at === null && row.site === site;
  }

  /** Runs with the site of their machine's appliance (runs of machines without one drop out). */
  private runsWithSite() {
    return this.d.store.db.selectFrom('runs').innerJoin('machines', 'machines.id', 'runs.machine_id').innerJoin('appliances', 'appliances.id', 'machines.appliance_id');
  }

  /** The sites' caches as the managers list shows them, by site. */
  async statuses(): Promise<Map<string, SiteCacheStatus>> {
    const rows = await this.d.store.db.selectFrom('managers').select(['site', 'cache_url', 'cache_report', 'cache_seen']).where('cache_url', 'is not', null).execute();
    const out = new Map<string, SiteCacheStatus>();
    for (const r of rows) {
      if (r.cache_url && r.cache_seen) out.set(r.site, { url: r.cache_url, lastReport: r.cache_seen, inUse: this.fresh(r.cache_seen), report: fromJson<SiteCacheReport | null>(r.cache_report, null) });
    }
    return out;
  }

  private fresh(seen: string): boolean {
    return this.d.clock.now().getTime() - Date.parse(seen) <= this.staleMs;
  }
}
