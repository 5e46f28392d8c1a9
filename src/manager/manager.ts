import { PlinthClient } from '../api/client.js';
import type { Logger } from '../core/logger.js';
import { executeJob, JobStepError } from '../power/execute.js';
import type { JobSpec } from '../power/jobs.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { Endpoint, ProviderType } from '../providers/types.js';

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

  constructor(private readonly o: ManagerOptions) {
    this.client = new PlinthClient({ url: o.url, token: o.token, timeoutMs: 60_000, ca: o.ca ?? null });
  }

  /** Stops claiming at once (an open long poll is cut); jobs under way finish and report. */
  stop(): void {
    this.stopped = true;
    this.stopping.abort();
  }

  async run(): Promise<void> {
    this.o.log.info({ site: this.o.site, controller: this.o.url }, 'manager started');
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
