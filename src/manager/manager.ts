import { PlinthClient } from '../api/client.js';
import type { Logger } from '../core/logger.js';
import { executeJob, JobStepError } from '../power/execute.js';
import type { JobSpec } from '../power/jobs.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { Endpoint, ProviderType } from '../providers/types.js';
import type { SiteCacheAnswer, SiteCacheFetch, SiteCacheReport } from '../protocol/site-cache.js';
import { CacheServer } from './cache-server.js';
import { CacheError, FileCache } from './file-cache.js';

/**
 * A remote manager (`plinth manager`): runs providers at a site next to its BMC network and
 * dials out to the controller, so the BMC network needs no inbound connection. It claims the
 * site's jobs (long poll), runs each through the same code the controller uses, and reports
 * the outcome. A job it claimed but never reported goes back to the queue when its lease ends.
 */
export interface ManagerOptions {
  url: string;
  token: string;
  site: string;
  parallel: number;
  registry: ProviderRegistry;
  log: Logger;
  version: string;
  providerTimeoutMs: number;
  /** After a power action, how long to wait for the target state (default: executeJob's). */
  powerVerifyTimeoutMs?: number;
  /** PEM CA bundle to trust for an HTTPS controller, besides the system's. */
  ca?: string | null;
  /** A site cache: files for the site's machines, kept in `dir` under `limitBytes`, served on `listen`. */
  cache?: SiteCacheOptions;
}

export interface SiteCacheOptions {
  dir: string;
  limitBytes: number;
  listen: { host: string; port: number };
  /** The URL the site's machines reach the cache at; default: the address it listens on. */
  advertiseUrl?: string;
  /** How often the cache reports to the controller (default 15 s; the controller passes over a cache silent for a minute). */
  reportEveryMs?: number;
}

interface ClaimedJob {
  id: string;
  spec: JobSpec;
  appliance: { name: string; type: ProviderType };
  endpoint: Endpoint;
}

export class Manager {
  private stopped = false;
  private readonly stopping = new AbortController();
  private readonly client: PlinthClient;
  private inFlight = 0;
  private cache: { server: CacheServer; files: FileCache; url: string } | null = null;

  constructor(private readonly o: ManagerOptions) {
    this.client = new PlinthClient({ url: o.url, token: o.token, timeoutMs: 60_000, ca: o.ca ?? null });
  }

  /** The site cache's URL once it listens (null without one). */
  get cacheUrl(): string | null {
    return this.cache?.url ?? null;
  }

  private sitePath(rest: string): string {
    return `/api/v1/managers/${encodeURIComponent(this.o.site)}${rest}`;
  }

  /** Opens the cache directory, listens, and reports until stopped; the first report's answer (the URL key) opens it to machines. */
  private async startCache(c: SiteCacheOptions): Promise<Promise<void>> {
    const files = new FileCache({
      dir: c.dir,
      limitBytes: c.limitBytes,
      log: this.o.log,
      source: {
        fetch: async (sha256, signal) => {
          let res: Response;
          try {
            res = await this.client.fetch(`${this.client.url}${this.sitePath(`/files/${sha256}`)}`, { headers: { authorization: this.client.authorization ?? '', 'accept-encoding': 'identity' }, signal });
          } catch (e) {
            throw new CacheError(503, `cannot reach the controller: ${(e as Error).message}`);
          }
          if (res.status === 404) throw new CacheError(404, `the controller serves no file with sha256 ${sha256}`);
          const length = Number(res.headers.get('content-length') ?? NaN);
          if (res.status !== 200 || !res.body || !Number.isSafeInteger(length)) {
            await res.body?.cancel().catch(() => undefined);
            throw new CacheError(503, `the controller answered HTTP ${res.status}${Number.isSafeInteger(length) ? '' : ' without a Content-Length'} for sha256 ${sha256}`);
          }
          return { size: length, body: res.body as unknown as AsyncIterable<Uint8Array> };
        },
      },
    });
    files.open();
    const server = new CacheServer({
      cache: files,
      log: this.o.log,
      authority: {
        runActive: async (runId) => (await this.client.request<{ active: boolean }>('GET', this.sitePath(`/runs/${encodeURIComponent(runId)}`), undefined, undefined, AbortSignal.timeout(15_000))).active,
        // The trace is a diagnostic: a download is never held up or failed by its record.
        served: (f) => void this.client.request('POST', this.sitePath('/fetches'), f satisfies SiteCacheFetch).catch((e) => this.o.log.debug({ err: (e as Error).message }, 'site cache: fetch not recorded')),
      },
    });
    const listened = await server.listen(c.listen.host, c.listen.port);
    const url = (c.advertiseUrl ?? listened).replace(/\/+$/, '');
    this.cache = { server, files, url };
    this.o.log.info({ listen: listened, url, dir: c.dir, limitBytes: c.limitBytes, files: files.fileCount, usedBytes: files.usedBytes }, 'site cache listening');
    const every = c.reportEveryMs ?? 15_000;
    return (async () => {
      while (!this.stopped) {
        try {
          const answer = await this.client.request<SiteCacheAnswer>('POST', this.sitePath('/cache'), server.report(url) satisfies SiteCacheReport, undefined, this.stopping.signal);
          server.setKey(Buffer.from(answer.key, 'base64url'));
          for (const sha256 of answer.prefetch) files.prefetch(sha256);
        } catch (e) {
          if (this.stopped) break;
          this.o.log.warn({ err: (e as Error).message }, 'site cache: cannot report to the controller; retrying');
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, every);
          this.stopping.signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
        });
      }
    })();
  }

  /** Stops claiming at once (an open long poll is cut); jobs under way finish and report. */
  stop(): void {
    this.stopped = true;
    this.stopping.abort();
  }

  async run(): Promise<void> {
    this.o.log.info({ site: this.o.site, controller: this.o.url }, 'manager started');
    const reporting = this.o.cache ? await this.startCache(this.o.cache) : null;
    let backoff = 1000;
    while (!this.stopped) {
      const free = this.o.parallel - this.inFlight;
      if (free <= 0) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      let jobs: ClaimedJob[];
      try {
        ({ jobs } = await this.client.request<{ jobs: ClaimedJob[] }>(
          'POST',
          `/api/v1/managers/${encodeURIComponent(this.o.site)}/claim`,
          { version: this.o.version, max: free, waitSeconds: 20 },
          undefined,
          this.stopping.signal,
        ));
        backoff = 1000;
      } catch (e) {
        if (this.stopped) break;
        this.o.log.warn({ err: (e as Error).message }, 'cannot reach the controller; retrying');
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 30_000);
        continue;
      }
      for (const j of jobs) {
        this.inFlight++;
        void this.execute(j).finally(() => this.inFlight--);
      }
    }
    while (this.inFlight > 0) await new Promise((r) => setTimeout(r, 50));
    await reporting;
    await this.cache?.server.close();
    await this.client.close();
    this.o.log.info({ site: this.o.site }, 'manager stopped');
  }

  private async execute(job: ClaimedJob): Promise<void> {
    const log = this.o.log.child({ job: job.id, kind: job.spec.kind, appliance: job.appliance.name });
    let body: unknown;
    try {
      const provider = this.o.registry.create(job.appliance.type, job.endpoint, { appliance: job.appliance.name });
      const result = await executeJob(
        job.spec,
        provider,
        {
          timeoutMs: this.o.providerTimeoutMs,
          log: { debug: (m, f) => log.debug(f ?? {}, m), info: (m, f) => log.info(f ?? {}, m), warn: (m, f) => log.warn(f ?? {}, m) },
        },
        this.o.powerVerifyTimeoutMs === undefined ? undefined : { timeoutMs: this.o.powerVerifyTimeoutMs },
      );
      body = { status: 'succeeded', result };
      log.info('job done');
    } catch (e) {
      const step = e instanceof JobStepError ? e.step : 'power';
      const failure = e instanceof JobStepError ? e.failure : 'protocol';
      body = { status: 'failed', error: { failure, step, message: (e as Error).message } };
      log.warn({ err: (e as Error).message }, 'job failed');
    }
    // Report until the controller hears it (it may be restarting); the lease bounds how long that matters.
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await this.client.request('POST', `/api/v1/managers/${encodeURIComponent(this.o.site)}/jobs/${job.id}`, body);
        return;
      } catch (e) {
        await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 15_000)));
      }
    }
  }
}
