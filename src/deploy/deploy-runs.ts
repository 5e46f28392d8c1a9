import type { Db, Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { PlinthError, validation } from '../core/errors.js';
import type { Config } from '../config/schema.js';
import type { LifecycleEngine, MachineTransaction } from '../lifecycle/engine.js';
import type { InventoryService } from '../inventory/service.js';
import type { Machine } from '../inventory/machine.js';
import { getArtifact, getRun, updateStep, updateSteps, type Run } from '../runs/runs.js';
import { scriptVariables } from '../runs/scripts.js';
import type { RunPrincipal } from '../runs/run-tokens.js';
import type { BootPlan, BootPlanner } from '../runs/boot-plan.js';
import { currentAttempt, recordStage } from '../runs/trace.js';
import type { PowerService } from '../power/service.js';
import type { SecretBox } from '../auth/secrets.js';
import { HOST_TOKEN_PURPOSE, mintHostToken } from '../auth/host-tokens.js';
import type { DeployParams, InstalledReport, MulticastReceive, Progress } from '../protocol/agent.js';
import { isAgentMethod } from '../protocol/deploy.js';
import type { ProfileLookup } from './service.js';
import { IPXE_TEMPLATE, sha256Hex, withCallbackSecret, type DeployRunParams } from './run-params.js';
import type { MulticastSessions } from './multicast.js';
import type { SiteCaches } from '../power/site-caches.js';

/**
 * A deploy run as its machine lives it, once DeployService has prepared it: the parameters
 * its agent works from, the deadlines that follow the image write, the switch to booting
 * the disk, the boot plans of installer-native methods, and the callback secret by which
 * the installed OS (or a native installer) reports in. The agent session (boot/agent-session.ts)
 * calls these inside its transaction, passing the locked machine.
 */

export interface DeployRunsDeps {
  store: Store;
  clock: Clock;
  engine: LifecycleEngine;
  inventory: InventoryService;
  power: PowerService;
  config: Pick<Config, 'deploy' | 'deadlines' | 'ms'> & { trees?: Pick<Config['trees'], 'rsyncListen'> };
  secrets: SecretBox;
  profileLookup: ProfileLookup;
  multicast?: MulticastSessions;
  /** bin/edeploy, the command tree deploys install on the host. */
  edeployScript?: string;
  /** Remote sites' caches: a machine at a site with one fetches the image from there. */
  siteCaches?: Pick<SiteCaches, 'forMachine'>;
}

/** A receiver that saw no data for this long gives up on its session and completes over HTTP. */
const MULTICAST_RECEIVE_TIMEOUT_SECONDS = 30;

export class DeployRuns {
  constructor(private readonly d: DeployRunsDeps) {}

  /** The parameters the agent works from, in the hello answer. Only image and tree deploys run the agent. */
  async agentParams(db: Db, run: Run, machine: Machine): Promise<DeployParams> {
    const p = run.params as DeployRunParams;
    // The configure step: the operator's scripts with the machine's variables, before any disk.
    const configure = p.configureScripts?.length ? { scripts: p.configureScripts, variables: scriptVariables(machine, await this.d.profileLookup(db, machine)) } : {};
    const secret = await this.callbackSecret(db, run.id);
    const artifact = async (name: string) => withCallbackSecret((await getArtifact(db, run.id, name)).body, secret);
    if (p.method === 'tree' && p.tree && p.diskLayout) {
      const rsync = this.d.config.trees?.rsyncListen;
      const rsyncPort = rsync ? Number(rsync.slice(rsync.lastIndexOf(':') + 1)) : 0;
      return {
        tree: {
          role: p.tree.role,
          version: p.tree.version,
          ...(rsyncPort ? { rsyncPort } : {}),
          tarballUrl: `/install/${encodeURIComponent(`${p.tree.role}-${p.tree.version}`)}.edeploy`,
          profile: p.profile ?? '',
          edeployScript: this.d.edeployScript ?? '#!/bin/sh\necho "edeploy: this controller ships no edeploy command" >&2\nexit 1\n',
          onSuccess: p.onSuccess ?? 'kexec',
          diskLayout: p.diskLayout,
          hostToken: mintHostToken(this.d.secrets.deriveKey(HOST_TOKEN_PURPOSE), run.machineId, run.id),
        },
        ...configure,
        ...(p.kernelArgs ? { kernelArgs: p.kernelArgs } : {}),
        seed: {
          userData: await artifact('cloud-init/user-data'),
          metaData: await artifact('cloud-init/meta-data'),
          networkConfig: await artifact('cloud-init/network-config'),
        },
      };
    }
    if (p.method !== 'image' || !p.imageSha256 || !p.imageSize) throw new PlinthError('conflict', `run ${run.id} deploys with its ${p.method} installer; it has no work for the agent`);
    return {
      image: {
        url: p.imageUrl ?? (await this.imageUrl(db, run, p.image ?? '', p.imageSha256)),
        sha256: p.imageSha256,
        sizeBytes: Number(p.imageSize),
        format: 'raw',
        // The index always from the controller (small); the chunks from wherever the image comes (a site cache serves ranges too).
        ...(p.imageIndexSha256 && !p.imageUrl ? { index: { url: `/agent/v1/images/${encodeURIComponent(p.image ?? '')}/chunks`, sha256: p.imageIndexSha256 }, ...(p.differential ? { differential: true } : {}) } : {}),
      },
      ...(p.rootDeviceHints ? { rootDeviceHints: p.rootDeviceHints } : {}),
      ...(p.partition ? { partition: p.partition } : {}),
      ...(p.kernelArgs ? { kernelArgs: p.kernelArgs } : {}),
      ...configure,
      ...(await this.multicastReceive(p, run.id)),
      seed: {
        userData: await artifact('cloud-init/user-data'),
        metaData: await artifact('cloud-init/meta-data'),
        networkConfig: await artifact('cloud-init/network-config'),
      },
    };
  }

  /**
   * The run's multicast session, only while it still waits for receivers: one already
   * sending has nothing for a late machine. A uftp session is handed out with the client ID
   * and server key its receiver needs (which counts the machine in), and only with the
   * image's chunk index, against which the agent checks what uftp wrote.
   */
  private async multicastReceive(p: DeployRunParams, runId: string): Promise<{ multicast?: MulticastReceive }> {
    const m = p.multicast;
    if (!m || !this.d.multicast?.joinable(m.session)) return {};
    const receive = { session: m.session, portbase: m.portbase, startTimeoutSeconds: m.maxWaitSeconds + MULTICAST_RECEIVE_TIMEOUT_SECONDS, receiveTimeoutSeconds: MULTICAST_RECEIVE_TIMEOUT_SECONDS };
    if (m.transport !== 'uftp') return { multicast: receive };
    if (!p.imageIndexSha256 || p.imageUrl) return {};
    const uftp = await this.d.multicast.handOut(m.session, runId);
    return uftp ? { multicast: { ...receive, transport: 'uftp', uftp } } : {};
  }

  /**
   * The URL of an image the controller serves: the machine's site cache when it has one in
   * use (a signed URL for this run, no run token needed), else the controller's own path.
   */
  private async imageUrl(db: Db, run: Run, image: string, sha256: string): Promise<string> {
    const cache = await this.d.siteCaches?.forMachine(db, run.machineId);
    return cache ? cache.fileUrl({ sha256, name: image, runId: run.id }) : `/agent/v1/images/${encodeURIComponent(image)}`;
  }

  /** The deploy-wait deadline grows with the image: the write at the assumed speed, twice, plus the first boot. */
  deadlineAfterHello(run: Run): number {
    const size = Number((run.params as DeployRunParams).imageSize ?? 0);
    const estimate = (size / (this.d.config.deploy.assumedWriteMBps * 1e6)) * 2000 + this.d.config.ms.deploy.firstBootAllowance;
    return Math.max(this.d.config.ms.deadlines['deploy-wait'], estimate);
  }

  /**
   * As the write progresses, the deadline follows the throughput observed so far — within a
   * bound: never further than the deploy-wait deadline a fresh hello would get for this image
   * (twice the write at the assumed speed plus the first boot), counted from now. A slow or
   * lying agent cannot push the deadline out to any date it likes; inconsistent numbers are
   * refused (400) and change nothing.
   */
  async onProgress(tx: MachineTransaction, run: Run, progress: Progress): Promise<void> {
    const size = (run.params as DeployRunParams).imageSize;
    if (size !== null && size !== undefined && progress.totalBytes !== Number(size)) throw validation('progress.totalBytes', `is not the size of the run's image (${size} bytes)`);
    if (progress.bytesPerSecond <= 0) return;
    const now = this.d.clock.now().getTime();
    const remainingMs = ((progress.totalBytes - progress.bytesWritten) / progress.bytesPerSecond) * 2000;
    const wanted = now + remainingMs + this.d.config.ms.deploy.firstBootAllowance;
    await tx.extendDeadline(run.id, Math.min(wanted, now + this.deadlineAfterHello(run)));
  }

  /** The image is written: the first boot of the installed OS gets its allowance from now. */
  async bootLocal(tx: MachineTransaction, p: RunPrincipal): Promise<void> {
    const at = iso(this.d.clock.now());
    await updateStep(tx.trx, p.runId, 'reboot', 'running', at, 'booting the installed OS');
    await recordStage(tx.trx, { machineId: p.machineId, attemptId: await currentAttempt(tx.trx, p.machineId, p.runId), runId: p.runId, at, stage: 'boot-local' });
    await tx.extendDeadline(p.runId, this.d.clock.now().getTime() + this.d.config.ms.deploy.firstBootAllowance);
  }

  /** After boot-local commits: set the disk as the boot device through the machine's appliance, if it has one. */
  async bootFromDisk(p: RunPrincipal): Promise<void> {
    const m = await this.d.inventory.get(p.machineId);
    if (m.provider.applianceId) {
      await this.d.power.enqueueForMachine(m.id, (mm) => ({ kind: 'boot', ref: mm.provider.ref ?? '', device: 'disk', persistent: true, then: 'none' }), { runId: p.runId });
    }
  }

  /** Boot plans during deploys: local disk once the image is written, the distribution's installer for native methods. */
  readonly planner: BootPlanner = async (_m, run) => {
    if (run.kind !== 'deploy') return null;
    const reboot = run.steps.find((s) => s.name === 'reboot');
    if (reboot && reboot.status !== 'pending') return { kind: 'local', why: 'its image is written; booting the installed OS' };
    const p = run.params as DeployRunParams;
    if (isAgentMethod(p.method) || p.prepareError) return null;
    const name = `ipxe/${IPXE_TEMPLATE[p.method]}`;
    const body = (await getArtifact(this.d.store.db, run.id, name)).body;
    const secret = await this.callbackSecret(this.d.store.db, run.id);
    const plan: BootPlan = { kind: 'script', decision: `${p.method}-installer`, render: () => withCallbackSecret(body, secret) };
    return plan;
  };

  /** The run's own callback secret (unsealed), for delivery to its machine only. */
  private async callbackSecret(db: Db, runId: string): Promise<string | null> {
    const row = await db.selectFrom('runs').select('callback_sealed').where('id', '=', runId).executeTakeFirst();
    return row?.callback_sealed ? this.d.secrets.decrypt(row.callback_sealed) : null;
  }

  /** An artifact as its machine's installer fetches it (by the callback secret in its URL): with the secret in place. */
  async deliverArtifact(run: Run, name: string): Promise<{ contentType: string; body: string; sha256: string }> {
    const a = await getArtifact(this.d.store.db, run.id, name);
    const body = withCallbackSecret(a.body, await this.callbackSecret(this.d.store.db, run.id));
    return { contentType: a.contentType, body, sha256: sha256Hex(body) };
  }

  /** The active deploy run a callback secret belongs to. */
  async runByCallback(token: string): Promise<{ run: Run; machine: Machine } | null> {
    if (!token.startsWith('plcb_')) return null;
    const row = await this.d.store.db.selectFrom('runs').select(['id', 'machine_id']).where('callback_hash', '=', sha256Hex(token)).where('status', 'in', ['pending', 'running']).executeTakeFirst();
    if (!row) return null;
    return { run: await getRun(this.d.store.db, row.id), machine: await this.d.inventory.get(row.machine_id) };
  }

  /** A native installer fetched one of its run's artifacts: the installer is running. */
  async artifactFetched(run: Run, machine: Machine, name: string): Promise<void> {
    const at = iso(this.d.clock.now());
    await recordStage(this.d.store.db, { machineId: machine.id, attemptId: await currentAttempt(this.d.store.db, machine.id, run.id), runId: run.id, at, stage: 'artifact', detail: { name } });
    if (machine.state === 'deploying') {
      await this.d.engine.tryAct(machine.id, 'installer-started', { actor: { kind: 'system', name: 'deploy' }, runId: run.id, reason: `installer fetched ${name}`, guard: (m) => m.state === 'deploying' });
    }
  }

  /** The installed OS (or a native installer's last step) reports in: the machine is deployed. */
  async installed(tx: MachineTransaction, run: Run, report: InstalledReport, remoteAddr: string | null): Promise<Machine> {
    const { event } = report;
    const machine = tx.machine;
    const actor = { kind: 'agent' as const, name: `run:${run.id}` };
    const at = iso(this.d.clock.now());
    if (machine.state === 'deploying') await tx.act('installer-started', { actor, runId: run.id, reason: `installed OS reported ${event}` });
    const profile = await this.d.profileLookup(tx.trx, machine);
    const primary = machine.facts?.nics.find((n) => n.link && n.ipv4.length)?.ipv4[0] ?? null;
    const configured = (typeof profile.vars.ip === 'string' ? profile.vars.ip : null) ?? primary ?? (remoteAddr && !remoteAddr.startsWith('127.') ? remoteAddr : null);
    // Facts and profile variables give addresses in CIDR form (10.0.0.5/24): the machine is reached at the address alone.
    const address = configured ? configured.replace(/\/\d{1,3}$/, '') : null;
    const r = await tx.act('deploy-done', {
      actor,
      runId: run.id,
      reason: `installed OS reported ${event}`,
      alsoInTransaction: async (trx) => {
        await updateSteps(trx, run.id, ['reboot', 'first-boot'], 'succeeded', at);
        await recordStage(trx, { machineId: machine.id, attemptId: await currentAttempt(trx, machine.id, run.id), runId: run.id, at, stage: 'installed-os', detail: { event } });
        const tree = (run.params as DeployRunParams).tree ?? null;
        return { deployed_image: (run.params.image as string | null) ?? (run.params.method as string), deployed_at: at, deployed_address: address, deployed_role: tree?.role ?? null, deployed_version: tree?.version ?? null };
      },
    });
    return r.machine;
  }
}
