import type { Facts } from '../core/facts.js';
import type { AgentConfig } from './cmdline.js';
import { AgentClient, AgentHttpError } from './client.js';
import { LogShipper } from './log-shipper.js';
import { isStepError } from './steps/errors.js';
import { SCRIPT_DISK_LAYOUT_FILE, type AgentNext, type BootLocalAnswer, type FailReport, type HelloRequest, type HelloResponse, type Heartbeat, type NextAnswer, type Progress, type Script, type ScriptResult, type SshReport, type StepReport, type StepReportAnswer, type HoldParams } from '../protocol/agent.js';
import { parseDeployParams, parseHoldParams, parseInspectParams, parseWipeParams } from './steps/protocol.js';
import { runScripts, scriptDiskLayout, scriptError } from './steps/scripts.js';
import { candidateDisks } from './steps/root-disk.js';
import { runDeploySteps, runTreeDeploySteps, runWipeSteps, type DeployDeps, type StepRunnerDeps } from './steps/runner.js';
import type { OnSuccess } from '../protocol/deploy.js';
import type { ConsoleImagesAnswer, ConsoleInstallAnswer, ConsolePower } from '../protocol/agent.js';
import { consolePower, type ConsolePowerAction } from './console/power.js';
import { partitionsOf } from './steps/block-device.js';
import { nodeExec } from './steps/exec.js';
import { consoleMenu, finalScreen, type Terminal } from './console/menu.js';

/**
 * The agent's main loop: say hello with the run token, do the run's work, report, and end
 * as the controller says (power off, reboot, or wait). Everything it touches comes in through
 * AgentDeps, so tests drive it against a real controller without a real machine.
 */
export interface AgentDeps {
  config: AgentConfig;
  version: string;
  inspect: (log: (line: string) => void) => Promise<Facts>;
  /** kexec: boot the kernel loaded by a tree deploy's boot-loader step (kexec -e). */
  power: { poweroff(): Promise<void>; reboot(): Promise<void>; kexec?(): Promise<void> };
  console: (line: string) => void;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** Starts the SSH server of an installer or rescue run and says how to reach it (ssh-server.ts). */
  sshServer?: (params: HoldParams, log: (line: string) => void) => Promise<SshReport>;
  /** How a held agent waits for the controller to reset the machine (default: for ever). */
  hold?: () => Promise<void>;
  /** Where operators' scripts run (default the system's temporary directory). */
  scriptDir?: string;
  /** The machine's consoles for the console menu of a console hold (console/tty.ts); null when it has none. */
  menuConsoles?: () => MenuConsoles | null;
}

/** The terminal the console menu runs on, and a shell on it. */
export type MenuConsoles = Terminal & { shell(): Promise<void>; close(): void };

export type AgentOutcome = { result: 'done'; next: string } | { result: 'failed'; message: string } | { result: 'rejected'; message: string };

/** The hello answer as it arrives: its params are checked (protocol.ts) before the agent acts on them. */
type Hello = Omit<HelloResponse, 'run'> & { run: { id: string; kind: string; params: unknown } };

export async function runAgent(deps: AgentDeps): Promise<AgentOutcome> {
  const client = new AgentClient({
    url: deps.config.url,
    token: deps.config.token,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
  });
  const log = new LogShipper(client, deps.console);
  log.start();
  let hello: Hello;
  try {
    hello = await client.post<Hello>('/agent/v1/hello', { agentVersion: deps.version } satisfies HelloRequest);
  } catch (e) {
    // Without a valid run there is nobody to report to: say so on the console and stop.
    await log.stop().catch(() => undefined);
    const message = (e as Error).message;
    deps.console(`plinth-agent: the controller refused this installer: ${message}`);
    return { result: e instanceof AgentHttpError ? 'rejected' : 'failed', message };
  }
  log.line(`hello: machine ${hello.machine.name}, ${hello.run.kind} run ${hello.run.id}`);
  /** The step under way, for the heartbeat. */
  let currentStep: string | null = null;
  /** How far the image write is, for the controller's deadline. */
  let progress: Progress | null = null;
  const heartbeat = setInterval(
    () =>
      void client
        .post('/agent/v1/heartbeat', { ...(currentStep ? { step: currentStep } : {}), ...(progress && currentStep === 'write-image' ? { progress } : {}) } satisfies Heartbeat)
        .catch(() => undefined),
    hello.heartbeatSeconds * 1000,
  );
  heartbeat.unref();
  /** The operator's scripts (an inspection's tests, a deploy's configure step): a failing one fails the run. */
  const operatorScripts = (scripts: Script[] | undefined, variables: Record<string, unknown> | undefined) =>
    scripts?.length
      ? runScripts(scripts, variables ?? {}, {
          log: (l) => log.line(l),
          report: async (name, result) => {
            await client.post(`/agent/v1/scripts/${encodeURIComponent(name)}`, result satisfies ScriptResult);
          },
          ...(deps.scriptDir ? { workDir: deps.scriptDir } : {}),
        })
      : Promise.resolve([]);
  try {
    let next: AgentNext = 'wait';
    /** A tree deploy's ONSUCCESS, which decides how the run ends instead of `next`. */
    let onSuccess: OnSuccess | null = null;
    if (hello.run.kind === 'inspect') {
      // The operator's scripts first (discovery, commissioning, tests): a failing one fails the run.
      const params = parseInspectParams(hello.run.params);
      await operatorScripts(params.scripts, params.variables);
      const started = Date.now();
      const facts = await deps.inspect((l) => log.line(l));
      log.line(
        `inspected in ${((Date.now() - started) / 1000).toFixed(1)} s: ${facts.cpu.threads} threads, ${Math.round(facts.memory.totalBytes / 2 ** 20)} MiB (${facts.memory.source}), ` +
          `${facts.disks.length} disk(s), ${facts.nics.length} NIC(s), ${facts.hw.length} hw lines`,
      );
      await log.flush();
      ({ next } = await client.post<NextAnswer>('/agent/v1/facts', facts));
    } else if (hello.run.kind === 'deploy' || hello.run.kind === 'wipe') {
      // Deploy and wipe runs report each step; the run's last answer says how to end.
      let lastStepAnswer: StepReportAnswer = {};
      const stepDeps: StepRunnerDeps = {
        log: (l) => log.line(l),
        inspectDisks: async () => candidateDisks(await deps.inspect((l) => log.line(l))),
        reportStep: async (name, status, report = {}) => {
          currentStep = status === 'running' ? name : null;
          lastStepAnswer = await client.post<StepReportAnswer>(`/agent/v1/steps/${encodeURIComponent(name)}`, { status, ...report } satisfies StepReport);
        },
      };
      if (hello.run.kind === 'deploy') {
        const params = parseDeployParams(hello.run.params);
        // The configure step, before any disk is touched: a failing script leaves the disks as they were.
        const computed = scriptDiskLayout(await operatorScripts(params.scripts, params.variables));
        if (computed) {
          if (!params.tree) {
            throw scriptError(computed.script, `script ${computed.script} left ${SCRIPT_DISK_LAYOUT_FILE}: a disk layout is for tree deploys (an image brings its own partitions)`);
          }
          log.line(`script ${computed.script}: its ${SCRIPT_DISK_LAYOUT_FILE} replaces the disk layout the controller sent`);
          params.tree = { ...params.tree, diskLayout: computed.layout };
        }
        let bootLocal: BootLocalAnswer = {};
        const deployDeps: DeployDeps = {
          ...stepDeps,
          controllerUrl: deps.config.url,
          token: deps.config.token,
          onProgress: (p) => (progress = { bytesWritten: p.bytesWritten, totalBytes: p.totalBytes, bytesPerSecond: Math.round(p.bytesPerSecond) }),
          ...(deps.fetch ? { fetch: deps.fetch } : {}),
          beforeReboot: async () => {
            await log.flush();
            bootLocal = await client.post<BootLocalAnswer>('/agent/v1/boot-local', {});
          },
        };
        if (params.tree) {
          await runTreeDeploySteps({ ...params, tree: params.tree }, deployDeps, computed?.script);
          onSuccess = params.tree.onSuccess;
        } else await runDeploySteps(params, deployDeps);
        next = bootLocal.next ?? 'reboot';
      } else {
        await runWipeSteps(parseWipeParams(hello.run.params), stepDeps);
        next = lastStepAnswer.next ?? 'poweroff';
      }
    } else if (hello.run.kind === 'installer' || hello.run.kind === 'rescue') {
      const params = parseHoldParams(hello.run.params);
      // A console hold without keys runs no SSH server: its menu is all there is.
      const report = params.authorizedKeys.length > 0 ? await startSsh(deps, params, log) : null;
      if (report) ({ next } = await client.post<NextAnswer>('/agent/v1/ssh', report));
      if (params.console) {
        const term = deps.menuConsoles?.();
        if (!term) throw new Error('this installer has no console to show the menu on');
        const outcome = await consoleMenu({
          term,
          machine: hello.machine.name,
          shell: () => term.shell(),
          disks: async () => candidateDisks(await deps.inspect((l) => log.line(l))),
          partitions: (disk) => partitionsOf(`/dev/${disk}`, nodeExec()),
          images: async () => (await client.get<ConsoleImagesAnswer>('/agent/v1/console/images')).images,
          install: async (choice) => {
            await log.flush();
            return client.post<ConsoleInstallAnswer>('/agent/v1/console/install', choice);
          },
          log: (l) => log.line(l),
        });
        clearInterval(heartbeat);
        await log.stop().catch(() => undefined);
        // The hold is over (the controller ended it): the deploy run carries on with its own ticket.
        if (outcome.kind === 'install') return consoleInstall(deps, term, outcome.answer, `${outcome.image.name} on ${outcome.partition?.name ?? outcome.disk.name}`);
        await consolePower(outcome.kind, { term, power: deps.power, report: consoleReport(deps, deps.config.token) });
        return { result: 'done', next: outcome.kind };
      } else if (!report) throw new Error('this hold has no keys to let in');
      else if (next === 'wait') {
        // Held: work is done over SSH, and the controller ends the hold by resetting or
        // powering off the machine. The agent stays (heartbeats and log) until then.
        log.line(`held for work over SSH on port ${report.port}`);
        await (deps.hold ?? (() => new Promise<void>(() => setInterval(() => undefined, 1 << 30))))();
      }
    } else {
      throw new Error(`this agent does not know how to run a ${hello.run.kind} run`);
    }
    log.line(`done; next: ${onSuccess ? `ONSUCCESS=${onSuccess}` : next}`);
    if (onSuccess === 'console') log.line('ONSUCCESS=console: the installed system is on the disks; this installer stays up (reset the machine to boot it)');
    await log.stop();
    clearInterval(heartbeat);
    if (onSuccess) {
      // eDeploy's ONSUCCESS: the controller already boots this machine from its disk.
      if (onSuccess === 'kexec' && deps.power.kexec) await deps.power.kexec();
      if (onSuccess === 'kexec' || onSuccess === 'reboot') await deps.power.reboot();
      else if (onSuccess === 'halt') await deps.power.poweroff();
      return { result: 'done', next: onSuccess };
    }
    if (next === 'poweroff') await deps.power.poweroff();
    else if (next === 'reboot') await deps.power.reboot();
    return { result: 'done', next };
  } catch (e) {
    clearInterval(heartbeat);
    const message = (e as Error).message;
    log.line(`failed: ${message}`);
    await log.stop().catch(() => undefined);
    // A step's failure carries its code (image, disk...) and the step as the stage.
    const code = isStepError(e) ? e.code : 'agent';
    const stage = isStepError(e) ? e.step : undefined;
    await client.post('/agent/v1/fail', { code, message: message.slice(0, 4000), ...(stage ? { stage } : {}) } satisfies FailReport).catch(() => undefined);
    return { result: 'failed', message };
  }
}

async function startSsh(deps: AgentDeps, params: HoldParams, log: LogShipper): Promise<SshReport> {
  if (!deps.sshServer) throw new Error('this installer has no SSH server');
  const report = await deps.sshServer(params, (l) => log.line(l));
  await log.flush();
  return report;
}

/**
 * The deploy run the console started, done like any deploy (its own ticket, steps and log),
 * then the last screen: what happened, and reboot, power off or a shell as the operator says.
 */
async function consoleInstall(deps: AgentDeps, term: MenuConsoles, answer: ConsoleInstallAnswer, what: string): Promise<AgentOutcome> {
  const noPower = { poweroff: async () => undefined, reboot: async () => undefined };
  const outcome = await runAgent({ ...deps, config: { ...deps.config, runId: answer.run, token: answer.token }, power: noPower });
  const summary =
    outcome.result === 'done'
      ? `Installed ${what}: written and its sha256 verified (deploy run ${answer.run}); the machine boots it from its disk from now on.`
      : `The install of ${what} failed (deploy run ${answer.run}): ${outcome.message}`;
  const next = await finalScreen({ term, shell: () => term.shell(), log: deps.console }, summary);
  await consolePower(next, { term, power: deps.power, report: consoleReport(deps, answer.token) });
  return outcome;
}

/** Tells the controller, with this run's ticket, what the console chose; a few tries only, as the machine acts anyway. */
function consoleReport(deps: AgentDeps, token: string) {
  const client = new AgentClient({ url: deps.config.url, token, maxAttempts: 3, timeoutMs: 10_000, ...(deps.fetch ? { fetch: deps.fetch } : {}), ...(deps.sleep ? { sleep: deps.sleep } : {}) });
  return (action: ConsolePowerAction) => client.post('/agent/v1/console/power', { action } satisfies ConsolePower);
}
