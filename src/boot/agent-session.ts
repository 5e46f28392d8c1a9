import type { Store, Db } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import type { Facts } from '../core/facts.js';
import { PlinthError, validation } from '../core/errors.js';
import { redactSecrets } from '../core/redact.js';
import type { Config } from '../config/schema.js';
import type { LifecycleEngine, MachineTransaction } from '../lifecycle/engine.js';
import { contradicted, type InspectionService } from '../inspection/service.js';
import type { Actor, Machine } from '../inventory/machine.js';
import { appendRunLogWithin, getRun, updateStep, updateSteps, type Run } from '../runs/runs.js';
import type { RunPrincipal } from '../runs/run-tokens.js';
import type { Image, ImageStore } from '../images/store.js';
import { STEPS_DONE_AT_HELLO, WIPE_STEPS } from '../protocol/runs.js';
import type {
  AgentNext,
  AgentRun,
  BootLocalAnswer,
  FailReport,
  Heartbeat,
  HelloRequest,
  HelloResponse,
  InstalledReport,
  LogLine,
  NextAnswer,
  ScriptResult,
  SshReport,
  StepReport,
  StepReportAnswer,
} from '../protocol/agent.js';
import { currentAttempt, recordStage } from '../runs/trace.js';
import type { DeployRuns } from '../deploy/deploy-runs.js';
import type { ProfileLookup } from '../deploy/service.js';
import { inspectionScripts, recordScriptResult, scriptVariables } from '../runs/scripts.js';
import type { Holds } from '../deploy/holds.js';
import { healthTuplesOfRun } from '../health/service.js';

export interface AgentSessionDeps {
  store: Store;
  clock: Clock;
  engine: LifecycleEngine;
  inspection: InspectionService;
  deployRuns: DeployRuns;
  holds: Holds;
  images: ImageStore;
  config: Pick<Config, 'afterInspection' | 'agent'>;
  /** The machine's profile variables (matched spec variables, pool entry) for its scripts. */
  profileLookup?: ProfileLookup;
}

/** How often the agent says it is alive. */
export const HEARTBEAT_SECONDS = 15;
/** States in which the installer has been booted but its agent has not said hello yet. */
const AWAITING_HELLO = ['inspecting', 'deploying', 'wiping', 'installer-booting', 'rescue-booting'];

/**
 * One agent's session with the controller, from hello to its run's end, for a caller that
 * has already proved it holds the run's ticket (the RunPrincipal) or its deploy's callback
 * secret. Each report is one transaction with the machine row locked, as the lifecycle
 * engine takes it: the steps it marks, the trace it leaves and the state it moves the
 * machine to commit together or not at all, and two reports of one run never interleave.
 * What a run kind does beyond that (a deploy's parameters, deadlines, boot device) is
 * DeployRuns'; HTTP is the route file's (api/routes/agent.ts).
 */
export class AgentSession {
  constructor(private readonly d: AgentSessionDeps) {}

  private at(): string {
    return iso(this.d.clock.now());
  }

  private within<T>(p: RunPrincipal, fn: (tx: MachineTransaction) => Promise<T>): Promise<T> {
    return this.d.engine.withMachine(p.machineId, fn);
  }

  private async trace(db: Db, p: RunPrincipal, stage: string, detail: Record<string, unknown> | null = null): Promise<void> {
    const attemptId = await currentAttempt(db, p.machineId, p.runId);
    await recordStage(db, { machineId: p.machineId, attemptId, runId: p.runId, at: this.at(), stage, detail });
  }

  /** Stores installer output within the run's budget (agent.logLimit), secrets redacted; beyond it, 413 and nothing stored. */
  private async storeLog(db: Db, runId: string, lines: Required<LogLine>[]): Promise<void> {
    const limit = this.d.config.agent.logLimit;
    const redacted = lines.map((l) => ({ ...l, line: redactSecrets(l.line) }));
    if (!(await appendRunLogWithin(db, runId, redacted, limit))) {
      throw new PlinthError('payload_too_large', `run ${runId} has used its installer log budget (agent.logLimit, ${limit} bytes)`, { details: { field: 'lines', limit } });
    }
  }

  /** The agent started: the machine moves to its *-wait state, and the agent gets its run's parameters. */
  async hello(p: RunPrincipal, req: HelloRequest): Promise<HelloResponse> {
    return this.within(p, async (tx) => {
      const now = this.at();
      let before = await getRun(tx.trx, p.runId);
      if (AWAITING_HELLO.includes(tx.machine.state)) {
        const r = await tx.act('installer-started', {
          actor: actorOf(p),
          runId: p.runId,
          reason: 'agent hello',
          ...(before.kind === 'deploy' ? { deadlineMs: this.d.deployRuns.deadlineAfterHello(before) } : {}),
        });
        // The transition writes the run only if it ends one; otherwise the run read above stands.
        if (r.finishedRunId) before = await getRun(tx.trx, p.runId);
      }
      // After the transition, which then reuses the row this transaction locked (a trace first writes it).
      await this.trace(tx.trx, p, 'agent-hello', { agentVersion: req.agentVersion });
      const run = await updateSteps(tx.trx, p.runId, STEPS_DONE_AT_HELLO, 'succeeded', now, null, before);
      return { machine: { id: tx.machine.id, name: tx.machine.name }, run: await this.agentRun(tx.trx, run, tx.machine), heartbeatSeconds: HEARTBEAT_SECONDS };
    });
  }

  /** The run as the agent gets it: the parameters of its kind (protocol/agent.ts). */
  private async agentRun(db: Db, run: Run, machine: Machine): Promise<AgentRun> {
    switch (run.kind) {
      case 'inspect':
        return { id: run.id, kind: 'inspect', params: await this.inspectParams(db, run, machine) };
      case 'deploy':
        return { id: run.id, kind: 'deploy', params: await this.d.deployRuns.agentParams(db, run, machine) };
      case 'wipe':
        return { id: run.id, kind: 'wipe', params: { mode: run.params.wipe === 'full' ? 'full' : 'quick' } };
      case 'installer':
      case 'rescue':
        return { id: run.id, kind: run.kind, params: this.d.holds.agentParams(run) };
    }
  }

  /**
   * An inspection's scripts: the ones its action gave (a test run), else the library's
   * inspection scripts; a health check runs the library's and then its own, as a MAAS
   * commissioning runs its scripts with the tests an operator picked (its facts stay as
   * complete as any inspection's). With the machine's variables; none: no parameters.
   */
  private async inspectParams(db: Db, run: Run, m: Machine): Promise<Extract<AgentRun, { kind: 'inspect' }>['params']> {
    const given = run.params.scripts as Extract<AgentRun, { kind: 'inspect' }>['params']['scripts'];
    const scripts = run.params.health ? [...(await inspectionScripts(db)), ...(given ?? [])] : (given ?? (await inspectionScripts(db)));
    if (scripts.length === 0) return {};
    const profile = this.d.profileLookup ? await this.d.profileLookup(db, m) : null;
    return { scripts, variables: scriptVariables(m, profile) };
  }

  /** One script's result (inspect runs, before the facts; deploys, their configure step); its failure is the agent's `fail`. */
  async script(p: RunPrincipal, name: string, result: ScriptResult): Promise<Record<string, never>> {
    if (p.kind !== 'inspect' && p.kind !== 'deploy') throw new PlinthError('conflict', `run ${p.runId} is a ${p.kind} run; scripts run in inspect and deploy runs`);
    return this.within(p, async (tx) => {
      const now = this.at();
      const passed = result.exitCode === 0;
      const how = result.timedOut ? 'timed out' : result.exitCode === null ? 'was killed' : `exited ${result.exitCode}`;
      await this.storeLog(tx.trx, p.runId, [{ at: now, stream: 'script', line: `script ${name}: ${how} in ${(result.durationMs / 1000).toFixed(1)} s` }]);
      await recordScriptResult(tx.trx, { machineId: p.machineId, runId: p.runId, name, result, now });
      await updateStep(tx.trx, p.runId, `script-${name}`, passed ? 'succeeded' : 'failed', now, passed ? null : how);
      await this.trace(tx.trx, p, `script:${name}`, { exitCode: result.exitCode, timedOut: result.timedOut, durationMs: result.durationMs });
      return {};
    });
  }

  /**
   * An inspection's facts: they end the inspect run, in one transaction with the machine
   * locked (it was three: transactions' begin and commit came first in a CPU profile of 64
   * inspections at once).
   */
  async facts(p: RunPrincipal, facts: Facts): Promise<NextAnswer> {
    if (p.kind !== 'inspect') throw new PlinthError('conflict', `run ${p.runId} is a ${p.kind} run; facts end inspect runs only`);
    const outcome = await this.within(p, async (tx) => {
      const started = tx.machine.state === 'inspecting' ? await tx.act('installer-started', { actor: actorOf(p), runId: p.runId, reason: 'facts before hello' }) : null;
      // A health run's figures join the facts as eDeploy tuples (hardware's benchmark mode does the same).
      const run = await getRun(tx.trx, p.runId);
      const health = run.params.health ? await healthTuplesOfRun(tx.trx, p.runId) : [];
      const measured = new Set(health.map(([c, id, k]) => `${c}/${id}/${k}`));
      const reported = health.length ? { ...facts, hw: [...facts.hw.filter(([c, id, k]) => !measured.has(`${c}/${id}/${k}`)), ...health] } : facts;
      // Identity checks and matching hooks, in this same transaction.
      const done = await this.d.inspection.completeIn(tx, started?.machine ?? tx.machine, p.runId, reported, this.at());
      if ('machine' in done) await this.trace(tx.trx, p, 'facts', { disks: facts.disks.length, nics: facts.nics.length, hw: facts.hw.length });
      return done;
    });
    // The failed run commits; the report is refused after it.
    if ('contradiction' in outcome) throw contradicted(p.machineId, outcome.contradiction);
    return { next: this.d.config.afterInspection as AgentNext };
  }

  /** Installer log lines, stored with the run. */
  async log(p: RunPrincipal, lines: LogLine[]): Promise<{ stored: number }> {
    const now = this.at();
    await this.within(p, (tx) => this.storeLog(tx.trx, p.runId, lines.map((l) => ({ at: l.at ?? now, stream: l.stream ?? 'agent', line: l.line }))));
    return { stored: lines.length };
  }

  /** The agent is alive; during an image write its progress moves the deadline (within a bound). */
  async heartbeat(p: RunPrincipal, beat: Heartbeat): Promise<{ next: AgentNext }> {
    const progress = beat.progress;
    if (progress) {
      if (progress.bytesWritten > progress.totalBytes) throw validation('progress.bytesWritten', 'is larger than progress.totalBytes');
      if (p.kind === 'deploy') await this.within(p, async (tx) => this.d.deployRuns.onProgress(tx, await getRun(tx.trx, p.runId), progress));
    }
    return { next: 'wait' };
  }

  /** A deploy or wipe step started, succeeded or failed; a wipe's last step ends its run. */
  async step(p: RunPrincipal, name: string, report: StepReport): Promise<StepReportAnswer> {
    return this.within(p, async (tx) => {
      const now = this.at();
      // The message first: beyond the log budget the report is refused before it changes anything.
      if (report.message) await this.storeLog(tx.trx, p.runId, [{ at: now, stream: 'step', line: `${name}: ${report.status}: ${report.message}` }]);
      await updateStep(tx.trx, p.runId, name, report.status, now, report.message ?? null);
      await this.trace(tx.trx, p, `step:${name}:${report.status}`, report.details ?? null);
      if (p.kind === 'wipe' && name === WIPE_STEPS.at(-1) && report.status === 'succeeded') {
        await tx.act('wipe-done', { actor: actorOf(p), runId: p.runId, reason: report.message ?? 'disks erased' });
        return { next: 'poweroff' };
      }
      return {};
    });
  }

  /** The installer's SSH server is up (installer and rescue runs): its port and host keys, kept for clients to pin. */
  async sshReady(p: RunPrincipal, report: SshReport, seenFrom: string | null): Promise<{ next: AgentNext }> {
    if (p.kind !== 'installer' && p.kind !== 'rescue') throw new PlinthError('conflict', `run ${p.runId} is a ${p.kind} run; only installer and rescue runs start an SSH server`);
    await this.within(p, (tx) => this.d.holds.sshReady(tx, p, report, seenFrom));
    return { next: 'wait' };
  }

  /** The image is written: the machine boots its disk from now on. */
  async bootLocal(p: RunPrincipal): Promise<Required<BootLocalAnswer>> {
    if (p.kind !== 'deploy') throw new PlinthError('conflict', `run ${p.runId} is a ${p.kind} run; only deploys boot their disk`);
    await this.within(p, (tx) => this.d.deployRuns.bootLocal(tx, p));
    // The appliance is told after the commit: a power job is not undone by a rollback.
    await this.d.deployRuns.bootFromDisk(p);
    return { next: 'reboot' };
  }

  /** The deploy run's image, for its agent to download (the route sends the bytes). */
  async image(p: RunPrincipal, name: string, range: string | undefined): Promise<Image> {
    const run = await getRun(this.d.store.db, p.runId);
    if (run.kind !== 'deploy' || run.params.image !== name) throw new PlinthError('forbidden', `run ${p.runId} does not deploy image ${name}`);
    const image = await this.d.images.get(name);
    await this.within(p, (tx) => this.trace(tx.trx, p, 'image', range ? { range } : { bytes: image.sizeBytes }));
    return image;
  }

  /** The path of the deploy run's image's chunk index, for its agent to download (the route sends it). */
  async imageIndex(p: RunPrincipal, name: string): Promise<string> {
    const run = await getRun(this.d.store.db, p.runId);
    if (run.kind !== 'deploy' || run.params.image !== name) throw new PlinthError('forbidden', `run ${p.runId} does not deploy image ${name}`);
    return (await this.d.images.chunkIndex(await this.d.images.get(name))).path;
  }

  /** The installed OS reports in with its deploy's callback secret (already checked: `found`). */
  async installed(found: { run: Run; machine: Machine }, report: InstalledReport, remoteAddr: string | null): Promise<{ machine: string; state: string }> {
    const machine = await this.d.engine.withMachine(found.machine.id, (tx) => this.d.deployRuns.installed(tx, found.run, report, remoteAddr));
    return { machine: machine.name, state: machine.state };
  }

  /** The agent gives up: the machine goes to its *-failed state with this error. */
  async fail(p: RunPrincipal, report: FailReport): Promise<{ next: AgentNext }> {
    await this.within(p, async (tx) => {
      await this.trace(tx.trx, p, 'agent-failed', { code: report.code, message: report.message });
      await tx.act('fail', {
        actor: actorOf(p),
        runId: p.runId,
        reason: report.message,
        error: { code: report.code, message: report.message, ...(report.stage ? { stage: report.stage } : {}) },
      });
    });
    return { next: 'poweroff' };
  }
}

const actorOf = (p: RunPrincipal): Actor => ({ kind: 'agent', name: `run:${p.runId}` });
