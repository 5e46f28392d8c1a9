import { effectiveBootMethod } from '../core/boot-method.js';
import type { Db, Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { PlinthError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Config } from '../config/schema.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { Endpoint, PowerState, ProviderContext, ProviderType } from '../providers/types.js';
import type { LifecycleEngine, TransitionResult } from '../lifecycle/engine.js';
import type { Actor, Machine } from '../inventory/machine.js';
import { actorLabel } from '../inventory/machine.js';
import { requireMachine, updateMachineRow } from '../inventory/machine-rows.js';
import { recordEvent } from '../inventory/events.js';
import { isTransitional } from '../core/states.js';
import { hasAnyIdentity } from '../inventory/identity.js';
import { claimJobs, enqueueJob, expireJobs, finishJob, getJob, renewJob, type JobSpec, type ProviderJob } from './jobs.js';
import { executeJob, JobStepError } from './execute.js';
import { updateStep } from '../runs/runs.js';
import { rearmUnclaimedRun } from '../runs/run-tokens.js';
import { healthOfOutcome, setApplianceHealth } from './appliance-health.js';

export const POWER_ACTOR: Actor = { kind: 'system', name: 'power' };
const FAILED_STATES = new Set(['inspect-failed', 'deploy-failed', 'wipe-failed', 'installer-failed', 'rescue-failed']);
/** Transitions that start a run in an installer already running on the machine (docs/console.md): powering or booting it would cut that installer off. */
const ALREADY_BOOTED = new Set(['console-install', 'console-boot']);
/** States a machine leaves for `available` with something running on it, to be switched off. */
const LEFT_RUNNING = new Set(['deployed', 'installer', 'installer-failed', 'rescue', 'rescue-failed']);
/** A machine leaving the installer or rescue for its installed OS: boot the disk from now on, and reset it. */
const bootDisk = (m: Machine): JobSpec => ({ kind: 'boot', ref: m.provider.ref ?? '', device: 'disk', persistent: true, then: 'reboot' });

/**
 * The two things power needs from the appliances: which site runs an appliance (to queue its
 * jobs there), and an appliance's type and decrypted endpoint (to run a job here). The
 * appliance service provides both; taking only these keeps power below appliances, which
 * enlists through power.
 */
export interface ApplianceDirectory {
  /** By name or id; fails with not-found. */
  get(key: string): Promise<{ id: string; site: string | null }>;
  /** Address and (decrypted) credentials; the name is what a remote manager is told. */
  endpoint(key: string): Promise<{ appliance: { name: string; type: ProviderType }; endpoint: Endpoint }>;
}

export interface PowerServiceDeps {
  store: Store;
  clock: Clock;
  engine: LifecycleEngine;
  appliances: ApplianceDirectory;
  registry: ProviderRegistry;
  log: Logger;
  /** The providers section, its durations in milliseconds under `ms`. */
  config: Config['providers'] & { ms: Config['ms']['providers'] };
  /** Who claims jobs (controller instance id), for leases. */
  claimer: string;
  /**
   * The installer ISO's URL as BMCs fetch it (publicUrl), for machines that boot from virtual
   * media (`?machine=ID`: a machine's own, for one with a fixed boot address); undefined when unknown.
   */
  installerIsoUrl?: string;
  /** Told when a machine's virtual CD is to be ejected (its own ISO can go). */
  onEject?: (machineId: string) => void;
  /** The iPXE binary's URL for UEFI HTTP boot (boot method `http`); undefined when unknown. */
  httpBootUrl?: string;
}

/**
 * Power and boot-device control, driven by the lifecycle: when a run starts on a machine
 * with an appliance, a `boot` job (next boot from the network, then reboot or power on) is
 * queued in the same transaction; when an operation fails or a machine is retired, a power-off
 * job. Jobs of the controller's own appliances run here; those of a remote site wait for its
 * manager. A failed job that belongs to the machine's current run fails the machine with
 * `lastError.code = "power"` or `"boot-device"` and the provider's message.
 */
export class PowerService {
  private running = false;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private inFlight = 0;
  private syncTimer: NodeJS.Timeout | null = null;
  /** Transitions whose transaction queued a job: the loop is woken when they commit. */
  private readonly queuedBy = new WeakSet<TransitionResult>();
  private readonly d: PowerServiceDeps;
  private readonly timeoutMs: number;
  private readonly jobDeadlineMs: number;
  private readonly leaseMs: number;

  constructor(deps: PowerServiceDeps) {
    this.d = deps;
    this.timeoutMs = deps.config.ms.timeout;
    this.jobDeadlineMs = deps.config.ms.jobDeadline;
    this.leaseMs = deps.config.ms.lease;
    deps.engine.onTransitionInTransaction((trx, r) => this.onTransition(trx, r));
    // The job loop is woken only by a transition that queued a job: each wake is a claim
    // transaction, and most transitions (an agent's hello, its facts) queue none.
    deps.engine.onTransition((r) => {
      if (this.queuedBy.delete(r)) this.wake();
    });
  }

  /** The boot mode to ask for, from what inspection found. */
  private static modeOf(m: Machine): 'uefi' | 'legacy' | undefined {
    const bootMode = (m.facts as { firmware?: { bootMode?: string } } | null)?.firmware?.bootMode;
    return bootMode === 'uefi' ? 'uefi' : bootMode === 'bios' ? 'legacy' : undefined;
  }

  private async applianceSite(trx: Db, applianceId: string): Promise<string | null> {
    const a = await trx.selectFrom('appliances').select('site').where('id', '=', applianceId).executeTakeFirst();
    return a?.site ?? null;
  }

  private async onTransition(trx: Db, r: TransitionResult): Promise<void> {
    const m = r.machine;
    let expected: 'on' | 'off' | null = null;
    let spec: JobSpec | null = null;
    let runId: string | null = null;
    // A deploy whose preparation already failed is about to fail: don't power the machine on for it.
    const appliance = m.provider.applianceId
      ? await trx.selectFrom('appliances').select(['type', 'boot_method']).where('id', '=', m.provider.applianceId).executeTakeFirst()
      : undefined;
    const type = appliance?.type;
    const method = appliance ? effectiveBootMethod(m.bootMethod, appliance.boot_method) : 'pxe';
    const vmedia = method === 'vmedia';
    // A console install, or a console hold of a machine that booted with no orders, starts in the installer that is already running: nothing to power or boot.
    if (r.run && isTransitional(m.state) && !r.run.params.prepareError && !ALREADY_BOOTED.has(r.transition.action)) {
      expected = 'on';
      const mode = PowerService.modeOf(m);
      const ref = m.provider.ref ?? '';
      // Virtual media: the installer ISO in the virtual CD, a one-time boot from it, then power.
      spec = vmedia
        ? { kind: 'boot', ref, device: 'cd', persistent: false, ...(mode ? { mode } : {}), media: this.d.installerIsoUrl ? `${this.d.installerIsoUrl}${m.bootAddress ? `?machine=${encodeURIComponent(m.id)}` : ''}` : '', then: 'reboot' }
        : method === 'http'
          ? // UEFI HTTP boot: the firmware fetches iPXE from Plinth, which then asks for its script as any iPXE does.
            { kind: 'boot', ref, device: 'uefi-http', persistent: false, mode: 'uefi', url: this.d.httpBootUrl ?? '', then: 'reboot' }
          : { kind: 'boot', ref, device: 'pxe', persistent: false, ...(mode ? { mode } : {}), then: 'reboot' };
      runId = r.run.id;
    } else if (m.state === 'installer-exiting' || (m.state === 'deployed' && (r.from === 'rescue' || r.from === 'rescue-failed'))) {
      expected = 'on';
      spec = bootDisk(m);
      runId = m.currentRunId;
    } else if (FAILED_STATES.has(m.state) || m.state === 'retired' || ((m.state === 'available' || m.state === 'enrolled') && LEFT_RUNNING.has(r.from))) {
      expected = 'off';
      spec = { kind: 'power', ref: m.provider.ref ?? '', target: 'off' };
    } else if (m.state === 'available' || m.state === 'enrolled') {
      expected = 'off';
    } else if (m.state === 'deployed') {
      expected = 'on';
    }
    if (spec?.kind === 'power' && r.transition.action === 'timeout' && !hasAnyIdentity(m.identity)) {
      // Its BMC is all that ties this row to hardware, and the hardware never said it was this
      // machine: what the BMC powers may be running meanwhile as a machine enrolled from an
      // unknown network boot (inspection/netboot.ts). Not proven to be it, it is left alone.
      await this.note(trx, m, 'power-off-withheld', `machine ${m.name} timed out without ever identifying itself; what its appliance powers may be running as another machine, so it is not switched off (power it off by hand once that is settled)`, null, r.from);
      spec = null;
      expected = null;
    }
    if (expected) await updateMachineRow(trx, m.id, { power_expected: expected }, iso(this.d.clock.now()));
    if (vmedia && type !== 'manual' && isTransitional(r.from) && !isTransitional(m.state) && m.provider.applianceId) {
      // The run booted from the ISO (or would have): the virtual CD is emptied whatever its end,
      // and the machine's own ISO, if it had one, removed.
      this.d.onEject?.(m.id);
      this.queuedBy.add(r);
      await enqueueJob(trx, {
        applianceId: m.provider.applianceId,
        site: await this.applianceSite(trx, m.provider.applianceId),
        machineId: m.id,
        runId: null,
        spec: { kind: 'eject', ref: m.provider.ref ?? '' },
        now: this.d.clock.now(),
        deadlineMs: this.jobDeadlineMs,
      });
    }
    if (spec?.kind === 'boot' && type === 'manual') {
      // A manual appliance switches nothing: ask the operator, and wait (the state's deadline still applies).
      const what = spec.device === 'disk' ? `reset machine ${m.name} and make it boot from its disk` : `power on machine ${m.name} and make it boot from the network (PXE)`;
      await this.note(trx, m, 'operator-action-required', what, { run: runId });
      return;
    }
    if (spec && m.provider.applianceId && type !== 'manual') {
      this.queuedBy.add(r);
      await enqueueJob(trx, {
        applianceId: m.provider.applianceId,
        site: await this.applianceSite(trx, m.provider.applianceId),
        machineId: m.id,
        runId,
        spec,
        now: this.d.clock.now(),
        deadlineMs: this.jobDeadlineMs,
      });
    }
  }

  /** An event of power's on a machine that stays in its state (arrived there `from`). */
  private note(trx: Db, m: Machine, action: string, reason: string, details: Record<string, unknown> | null, from: string = m.state): Promise<void> {
    return recordEvent(trx, { type: `power.${action.replace(/^power-/, '')}`, machineId: m.id, at: iso(this.d.clock.now()), actor: actorLabel(POWER_ACTOR), action, fromState: from, toState: m.state, reason, details });
  }

  /** Queues a job for a machine's appliance (operator power actions, deploy's switch to local disk). */
  async enqueueForMachine(machineKey: string, build: (m: Machine) => JobSpec, opts: { runId?: string | null; actor?: Actor; event?: string } = {}): Promise<ProviderJob> {
    const id = await this.d.store.transaction(async (trx) => {
      const m = await requireMachine(trx, this.d.store.dialect, machineKey, { lock: true });
      if (!m.provider.applianceId) {
        throw new PlinthError('conflict', `machine ${m.name} has no appliance: nothing controls its power (link it to one, or power it by hand)`, {
          details: { machine: m.name },
        });
      }
      const jobId = await enqueueJob(trx, {
        applianceId: m.provider.applianceId,
        site: await this.applianceSite(trx, m.provider.applianceId),
        machineId: m.id,
        runId: opts.runId ?? null,
        spec: build(m),
        now: this.d.clock.now(),
        deadlineMs: this.jobDeadlineMs,
      });
      if (opts.event && opts.actor) {
        await recordEvent(trx, { type: `power.${opts.event.replace(/^power-/, '')}`, machineId: m.id, at: iso(this.d.clock.now()), actor: actorLabel(opts.actor), action: opts.event, fromState: m.state, toState: m.state, reason: null, details: { job: jobId } });
      }
      return jobId;
    });
    this.wake();
    return (await getJob(this.d.store.db, id))!;
  }

  async enqueueForAppliance(applianceKey: string, spec: JobSpec): Promise<ProviderJob> {
    const a = await this.d.appliances.get(applianceKey);
    const id = await enqueueJob(this.d.store.db, { applianceId: a.id, site: a.site, spec, now: this.d.clock.now(), deadlineMs: this.jobDeadlineMs });
    this.wake();
    return (await getJob(this.d.store.db, id))!;
  }

  /** Waits until a job is finished (or `timeoutMs` passes) and returns it as it then is. */
  async wait(jobId: string, timeoutMs: number): Promise<ProviderJob> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const j = await getJob(this.d.store.db, jobId);
      if (!j) throw new PlinthError('not_found', `job '${jobId}' not found`);
      if (j.status === 'succeeded' || j.status === 'failed' || Date.now() >= until) return j;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  wake(): void {
    this.wakeUp?.();
  }

  /** Starts the embedded job runner (and the power-state sync loop). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.runLoop();
    const sync = this.d.config.ms.syncInterval;
    if (sync > 0) this.scheduleSync(sync);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.wake();
    await this.loop;
    while (this.inFlight > 0) await new Promise((r) => setTimeout(r, 20));
  }

  private scheduleSync(intervalMs: number): void {
    const jittered = intervalMs * (0.8 + Math.random() * 0.4);
    this.syncTimer = setTimeout(() => {
      void this.syncOnce()
        .catch((e) => this.d.log.warn({ err: e }, 'power sync failed'))
        .finally(() => this.running && this.scheduleSync(intervalMs));
    }, jittered);
    this.syncTimer.unref();
  }

  /**
   * Queues one sync job per appliance (not for manual ones, nor when one is still pending).
   * An appliance that refused its credentials (health `auth`) is left alone: each sync would
   * be one more failed login, which BMCs count towards locking the account. New credentials
   * (`plinth appliance update`) or a check that gets through (`plinth appliance check`) bring
   * it back.
   */
  async syncOnce(): Promise<number> {
    const db = this.d.store.db;
    const appliances = await db.selectFrom('appliances').select(['id', 'site', 'type']).where('type', '!=', 'manual').where('health', '!=', 'auth').execute();
    let queued = 0;
    for (const a of appliances) {
      const pending = await db.selectFrom('provider_jobs').select('id').where('appliance_id', '=', a.id).where('kind', '=', 'sync').where('status', 'in', ['queued', 'running']).executeTakeFirst();
      if (pending) continue;
      const refs = await db.selectFrom('machines').select('provider_ref').where('appliance_id', '=', a.id).where('maintenance', '=', 0).where('provider_ref', 'is not', null).execute();
      if (refs.length === 0) continue;
      await enqueueJob(db, { applianceId: a.id, site: a.site, spec: { kind: 'sync', refs: refs.map((r) => r.provider_ref!) }, now: this.d.clock.now(), deadlineMs: this.jobDeadlineMs });
      queued++;
    }
    this.wake();
    return queued;
  }

  private async runLoop(): Promise<void> {
    let lastExpiry = 0;
    while (this.running) {
      try {
        if (Date.now() - lastExpiry > 1000) {
          lastExpiry = Date.now();
          for (const j of await expireJobs(this.d.store.db, this.d.clock.now(), (site) => this.describeRunner(site))) if (j.status !== 'succeeded') await this.onJobFailed(j);
        }
        const free = this.d.config.parallel - this.inFlight;
        const jobs = free > 0 ? await claimJobs(this.d.store, { site: null, claimer: this.d.claimer, limit: free, leaseMs: this.leaseMs, now: this.d.clock.now() }) : [];
        for (const j of jobs) {
          this.inFlight++;
          void this.run(j).finally(() => {
            this.inFlight--;
            this.wake();
          });
        }
        if (jobs.length === 0) await new Promise<void>((r) => ((this.wakeUp = r), setTimeout(r, 250)));
      } catch (e) {
        this.d.log.error({ err: e }, 'provider job loop failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async describeRunner(site: string | null): Promise<string> {
    if (site === null) return 'no controller ran it in time';
    const m = await this.d.store.db.selectFrom('managers').select('last_seen').where('site', '=', site).executeTakeFirst();
    return m ? `the manager of site ${site} was last seen ${m.last_seen}` : `no manager of site ${site} has ever connected`;
  }

  private async run(job: ProviderJob): Promise<void> {
    const log = this.d.log.child({ job: job.id, kind: job.spec.kind });
    const ctx: ProviderContext = {
      timeoutMs: this.timeoutMs,
      log: {
        debug: (msg, f) => log.debug(f ?? {}, msg),
        info: (msg, f) => log.info(f ?? {}, msg),
        warn: (msg, f) => log.warn(f ?? {}, msg),
      },
    };
    let outcome: Parameters<typeof finishJob>[3];
    const claimer = job.claimedBy ?? this.d.claimer;
    if (await this.skippedAfterTakeover(job, claimer)) return;
    // The lease is renewed every third of it while the job runs: only a runner that stopped
    // (killed, cut off from the database) loses its jobs, not one whose BMC is slow.
    const renewal = setInterval(() => {
      renewJob(this.d.store.db, job.id, claimer, this.leaseMs, this.d.clock.now()).catch((e) => log.warn({ err: String(e) }, 'could not renew the job\'s lease'));
    }, Math.max(100, Math.floor(this.leaseMs / 3)));
    renewal.unref();
    try {
      const { appliance, endpoint } = await this.d.appliances.endpoint(job.applianceId);
      const provider = this.d.registry.create(appliance.type, endpoint, { appliance: appliance.name });
      outcome = { status: 'succeeded', result: await executeJob(job.spec, provider, ctx, { timeoutMs: this.d.config.ms.powerVerifyTimeout }) };
    } catch (e) {
      const step = e instanceof JobStepError ? e.step : 'power';
      const failure = e instanceof JobStepError ? e.failure : 'protocol';
      outcome = { status: 'failed', error: { failure, step, message: (e as Error).message } };
    } finally {
      clearInterval(renewal);
    }
    await this.complete(job.id, claimer, outcome);
  }

  /**
   * Finishes, without running it, a network boot taken over after its lease whose machine
   * already booted into the run (`bootedAlready`); true when it did. Both runners call it: this
   * controller's loop and a site's claim for its manager.
   */
  private async skippedAfterTakeover(job: ProviderJob, claimer: string): Promise<boolean> {
    if (!(await this.bootedAlready(job))) return false;
    // Handed out again after its runner vanished (a lease is at-least-once), but the machine
    // already booted into the run: another reset would pull the running agent from under it.
    this.d.log.info({ job: job.id, run: job.runId, attempts: job.attempts, claimer }, 'boot job skipped: its run was claimed by the agent of the boot it caused, or is over');
    await this.complete(job.id, claimer, { status: 'succeeded', result: {} });
    return true;
  }

  /**
   * A network boot into a run, handed out again after its first runner vanished (a lease is
   * at-least-once): true when it needs doing no more — the run is over, or an agent claimed
   * it since the job was queued (queueing re-arms the run, so only a boot the first runner
   * caused can have claimed it). Otherwise the run is re-armed once more, in the same
   * statement, as the boot about to happen is the controller's own reset: a ticket handed to
   * a boot the first runner caused dies with that boot, and the next boot's agent claims the
   * run. A boot to the local disk is the one a run's own agent asks for, and always runs.
   */
  private async bootedAlready(job: ProviderJob): Promise<boolean> {
    if (job.attempts < 2 || job.spec.kind !== 'boot' || job.spec.device === 'disk' || job.spec.then === 'none' || !job.runId) return false;
    return !(await rearmUnclaimedRun(this.d.store.db, job.runId));
  }

  /** One provider job; not_found when there is none of that id. */
  async job(jobId: string): Promise<ProviderJob> {
    const job = await getJob(this.d.store.db, jobId);
    if (!job) throw new PlinthError('not_found', `job '${jobId}' not found`);
    return job;
  }

  /** How long a job claimed by a runner stays with it before it is handed out again. */
  get leaseMilliseconds(): number {
    return this.leaseMs;
  }

  /** A remote site's manager asked for work: it is alive (its heartbeat), at this version and address. */
  async managerSeen(site: string, version: string, address: string): Promise<void> {
    const { db } = this.d.store;
    const now = iso(this.d.clock.now());
    const existing = await db.selectFrom('managers').select('site').where('site', '=', site).executeTakeFirst();
    if (existing) await db.updateTable('managers').set({ last_seen: now, version, address }).where('site', '=', site).execute();
    // Two first claims of a site at once: one insert wins, the other's heartbeat is the same.
    else await db.insertInto('managers').values({ site, last_seen: now, version, address, cache_url: null, cache_report: null, cache_seen: null }).execute().catch(() => undefined);
  }

  /** Claims up to `max` jobs of a site for its manager, each with its appliance's address and (decrypted) credentials. */
  async claimForSite(site: string, max: number) {
    const claimer = `manager:${site}`;
    const jobs = await claimJobs(this.d.store, { site, claimer, limit: max, leaseMs: this.leaseMs, now: this.d.clock.now() });
    const out = [];
    for (const j of jobs) {
      // A site's job is taken over after its lease too (its manager died mid-job): the same check.
      if (await this.skippedAfterTakeover(j, claimer)) continue;
      const { appliance, endpoint } = await this.d.appliances.endpoint(j.applianceId);
      out.push({ id: j.id, spec: j.spec, appliance: { name: appliance.name, type: appliance.type }, endpoint });
    }
    return out;
  }

  /** Remote sites and when their manager was last seen. */
  async managers(): Promise<Array<{ site: string; lastSeen: string; version: string | null }>> {
    const rows = await this.d.store.db.selectFrom('managers').selectAll().orderBy('site').execute();
    return rows.map((m) => ({ site: m.site, lastSeen: m.last_seen, version: m.version }));
  }

  /** Records a job's outcome (from this controller or a manager) and applies it to the machine. */
  async complete(jobId: string, claimer: string, outcome: Parameters<typeof finishJob>[3]): Promise<boolean> {
    // The job's end and the power it read land together: whoever sees the job finished also
    // sees the machine's power it reported.
    const finished = await this.d.store.transaction(async (trx) => {
      if (!(await finishJob(trx, jobId, claimer, outcome, this.d.clock.now()))) return null;
      const job = await getJob(trx, jobId);
      if (job?.status === 'succeeded') await this.recordReadings(trx, job);
      if (job) await this.recordMedia(trx, job);
      if (job) await this.recordHealth(trx, job.applianceId, outcome);
      return { job };
    });
    if (!finished) return false;
    if (finished.job && finished.job.status !== 'succeeded') await this.onJobFailed(finished.job);
    else if (finished.job) await this.onJobSucceeded(finished.job);
    return true;
  }

  /** What the job said about its appliance (only a change is written, with an event). */
  private async recordHealth(db: Db, applianceId: string, outcome: Parameters<typeof finishJob>[3]): Promise<void> {
    const next = healthOfOutcome(outcome);
    if (!next) return;
    const previous = await setApplianceHealth(db, applianceId, next, iso(this.d.clock.now()), actorLabel(POWER_ACTOR));
    if (previous !== null) {
      const log = next.health === 'ok' ? this.d.log.info.bind(this.d.log) : this.d.log.warn.bind(this.d.log);
      log({ appliance: applianceId, from: previous, to: next.health, error: next.error }, 'appliance health changed');
    }
  }

  /**
   * Probes an appliance now (`plinth appliance check`): reads the power of its machines, or
   * lists its systems when it has none, and waits for the answer; the job's outcome sets
   * its health like any other. The one way besides new credentials to bring an appliance
   * out of `auth`, whose machines the sync no longer reads.
   */
  async probeAppliance(applianceKey: string, waitMs: number): Promise<ProviderJob> {
    const a = await this.d.appliances.get(applianceKey);
    const refs = await this.d.store.db.selectFrom('machines').select('provider_ref').where('appliance_id', '=', a.id).where('provider_ref', 'is not', null).orderBy('name').execute();
    const job = await this.enqueueForAppliance(a.id, refs.length ? { kind: 'sync', refs: refs.map((r) => r.provider_ref!) } : { kind: 'enumerate' });
    return this.wait(job.id, waitMs);
  }

  private async recordPower(db: Db, machineId: string, observed: PowerState, source: string): Promise<void> {
    const m = await db.selectFrom('machines').select(['name', 'state', 'power_expected', 'power_drift']).where('id', '=', machineId).executeTakeFirst();
    if (!m) return;
    const drift = observed !== 'unknown' && m.power_expected !== null && m.power_expected !== observed ? 1 : 0;
    const at = iso(this.d.clock.now());
    await updateMachineRow(db, machineId, { power_state: observed, power_read_at: at, power_source: source, power_drift: drift }, at);
    if (drift && !m.power_drift) {
      await recordEvent(db, { type: 'power.drift', machineId, at, actor: actorLabel(POWER_ACTOR), action: 'power-drift', fromState: m.state, toState: m.state, reason: `expected ${m.power_expected}, found ${observed}`, details: null });
      this.d.log.warn({ machine: m.name, expected: m.power_expected, observed }, 'power state drift');
    }
  }

  /** What a succeeded job read: the machine's power, or every machine's for a sync. */
  private async recordReadings(db: Db, job: ProviderJob): Promise<void> {
    const appliance = await db.selectFrom('appliances').select('type').where('id', '=', job.applianceId).executeTakeFirst();
    const source = appliance?.type ?? 'provider';
    const res = job.result as { power?: PowerState; states?: Record<string, PowerState> };
    if (job.machineId && res?.power) await this.recordPower(db, job.machineId, res.power, source);
    if (job.spec.kind === 'sync' && res?.states) {
      const machines = await db.selectFrom('machines').select(['id', 'provider_ref']).where('appliance_id', '=', job.applianceId).execute();
      const moving = await this.inTransition(db, job);
      for (const m of machines) {
        const s = m.provider_ref ? res.states[m.provider_ref] : undefined;
        if (s && !moving.has(m.id)) await this.recordPower(db, m.id, s, source);
      }
    }
  }

  /**
   * Machines whose sync reading says nothing: a power or boot job of theirs is queued or
   * running (the machine is about to change, or changing), or finished after the sync was
   * queued (its reads may predate that action). Recording such a reading would put a stale
   * state over the one the action verified and report a drift that is only the transition
   * (a false `power-drift` seconds after a ForceOff); the next sync reads them again.
   */
  private async inTransition(db: Db, sync: ProviderJob): Promise<Set<string>> {
    const rows = await db
      .selectFrom('provider_jobs')
      .select('machine_id')
      .where('appliance_id', '=', sync.applianceId)
      .where('kind', 'in', ['power', 'boot'])
      .where('machine_id', 'is not', null)
      .where((eb) => eb.or([eb('status', 'in', ['queued', 'running']), eb('finished_at', '>', sync.createdAt)]))
      .execute();
    return new Set(rows.map((r) => r.machine_id!));
  }

  /** What a job did with a machine's virtual media, as the machine's events: the ISO inserted, the CD ejected (or not). */
  private async recordMedia(db: Db, job: ProviderJob): Promise<void> {
    if (!job.machineId) return;
    const inserted = job.spec.kind === 'boot' && job.spec.media !== undefined && (job.status === 'succeeded' || job.error?.step !== 'virtual-media');
    if (!inserted && job.spec.kind !== 'eject') return;
    const m = await db.selectFrom('machines').select('state').where('id', '=', job.machineId).executeTakeFirst();
    if (!m) return;
    const action = job.spec.kind === 'eject' ? (job.status === 'succeeded' ? 'virtual-media-ejected' : 'virtual-media-eject-failed') : 'virtual-media-inserted';
    const details = { job: job.id, ...(job.spec.kind === 'boot' ? { image: job.spec.media } : {}) };
    await recordEvent(db, { machineId: job.machineId, at: iso(this.d.clock.now()), actor: actorLabel(POWER_ACTOR), action, fromState: m.state, toState: m.state, reason: job.status === 'succeeded' ? null : (job.error?.message ?? null), details });
  }

  /** A machine leaving the installer was switched to its disk and reset: it runs its installed OS. */
  private async onJobSucceeded(job: ProviderJob): Promise<void> {
    if (!job.machineId || job.spec.kind !== 'boot' || job.spec.device !== 'disk') return;
    try {
      await this.d.engine.tryAct(job.machineId, 'exit-done', {
        actor: POWER_ACTOR,
        reason: 'switched to its disk and reset into the installed OS',
        guard: (m) => m.state === 'installer-exiting' && m.currentRunId === job.runId && !m.maintenance,
        alsoInTransaction: async (trx) => {
          if (job.runId) await updateStep(trx, job.runId, 'exit', 'succeeded', iso(this.d.clock.now()), 'booted the installed OS from disk');
        },
      });
    } catch (e) {
      this.d.log.warn({ err: e, job: job.id }, 'could not finish leaving the installer after the switch to disk');
    }
  }

  /** A failed job of a machine's run fails the machine (after the job's own commit). */
  private async onJobFailed(job: ProviderJob): Promise<void> {
    if (!job.machineId || !job.runId) return;
    const code = job.error?.step === 'boot-device' || job.error?.step === 'virtual-media' ? job.error.step : 'power';
    try {
      await this.d.engine.tryAct(job.machineId, 'fail', {
        actor: POWER_ACTOR,
        reason: job.error?.message ?? 'provider job failed',
        guard: (m) => m.currentRunId === job.runId && isTransitional(m.state) && !m.maintenance,
        error: { code, message: job.error?.message ?? 'provider job failed', stage: code },
      });
    } catch (e) {
      this.d.log.warn({ err: e, job: job.id }, 'could not fail the machine of a failed provider job');
    }
  }
}
