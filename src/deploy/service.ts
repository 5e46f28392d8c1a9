import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db, Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso, parseDuration } from '../core/clock.js';
import { newId, newSecret } from '../core/ids.js';
import { PlinthError, isPlinthError, validation } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Config } from '../config/schema.js';
import type { Facts } from '../core/facts.js';
import type { LifecycleEngine, TransitionResult } from '../lifecycle/engine.js';
import type { InventoryService } from '../inventory/service.js';
import type { Actor, Machine } from '../inventory/machine.js';
import { requireMachine, updateMachineRow } from '../inventory/machine-rows.js';
import { getArtifact, getRun, listArtifacts, listRuns, putArtifact, updateStep, type Run } from '../runs/runs.js';
import type { RunPrincipal } from '../runs/run-tokens.js';
import { buildRenderContext, contentTypeOf, isTemplateError, renderArtifacts, renderTemplate, type TemplateKind } from '../templates/index.js';
import type { BootPlan, BootPlanner } from '../runs/boot-plan.js';
import { currentAttempt, recordStage } from '../runs/trace.js';
import type { PowerService } from '../power/service.js';
import type { ImageStore } from '../images/store.js';
import type { TemplateStore } from './template-store.js';
import { takeQuotaForDeploy } from '../profiles/matching.js';
import type { SecretBox } from '../auth/secrets.js';
import type { RootDeviceHints } from '../agent/steps/protocol.js';

/**
 * Deployment: from an `available` machine to an installed OS that reports in, by writing an
 * image (the default) or by booting a distribution's own installer (preseed, kickstart,
 * autoinstall). Everything the machine will receive is rendered before anything happens —
 * a missing image, an image no disk can hold, a template error fail the deploy at once with
 * `lastError.code` = image, disk or template — and kept with the run, so that a redeploy
 * with `reuseRun` hands out byte-identical artifacts.
 */
export const DEPLOY_METHODS = ['image', 'preseed', 'kickstart', 'autoinstall'] as const;

/**
 * What rendered artifacts carry where the run's callback secret goes. The secret is minted
 * per run and sealed on the run row; it replaces this placeholder only on the way to the
 * machine (its native installer's script and artifacts, the agent's hello). Stored artifacts
 * never contain it — readers see the placeholder, and `--reuse-run` copies them byte for byte
 * while the new run gets its own secret.
 */
export const CALLBACK_PLACEHOLDER = 'plcb_run-secret-placeholder';
export type DeployMethod = (typeof DEPLOY_METHODS)[number];

export interface DeployRequest {
  image?: string;
  /** Fetch the image from this URL (a mirror near the machines) instead of the controller; same bytes, same checksum. */
  imageUrl?: string;
  method?: DeployMethod;
  sshKeys?: string[];
  rootDeviceHints?: RootDeviceHints;
  reuseRun?: string;
  /** Installer-native methods: kernel and initrd, by image-store name or URL. */
  installer?: { kernel?: string; initrd?: string };
}

/** What a machine's profile says about deploying it (filled in by matching). */
export interface ProfileDeploy {
  profile: string | null;
  vars: Record<string, unknown>;
  deploy: (DeployRequest & { kernelArgs?: string }) | null;
}
export type ProfileLookup = (db: Db, machine: Machine) => Promise<ProfileDeploy>;
const NO_PROFILE: ProfileLookup = async () => ({ profile: null, vars: {}, deploy: null });

/** What the run records, beyond what the agent needs. */
interface DeployRunParams extends Record<string, unknown> {
  method: DeployMethod;
  image: string | null;
  imageSha256: string | null;
  imageSize: number | null;
  imageUrl: string | null;
  rootDeviceHints: RootDeviceHints | null;
  profile: string | null;
  sshKeyCount: number;
  reuseRun: string | null;
  prepareError: { code: string; message: string } | null;
}

const IPXE_TEMPLATE: Record<Exclude<DeployMethod, 'image'>, string> = {
  preseed: 'debian-installer',
  kickstart: 'anaconda',
  autoinstall: 'ubuntu-autoinstall',
};

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

export interface DeployServiceDeps {
  store: Store;
  clock: Clock;
  engine: LifecycleEngine;
  inventory: InventoryService;
  images: ImageStore;
  templates: TemplateStore;
  power: PowerService;
  config: Config;
  log: Logger;
  profileLookup?: ProfileLookup;
  /** Seals each run's callback secret. */
  secrets: SecretBox;
}

export class DeployService {
  private readonly d: DeployServiceDeps;
  profileLookup: ProfileLookup;

  constructor(deps: DeployServiceDeps) {
    this.d = deps;
    this.profileLookup = deps.profileLookup ?? NO_PROFILE;
  }

  private siteKeys(): string[] {
    const file = this.d.config.deploy.sshKeysFile || join(this.d.config.dataDir, 'authorized_keys');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
  }

  /**
   * The address a machine reaches the controller at: `publicUrl`, else the controller's
   * address on the connection the machine last network-booted through (never a Host header);
   * else (a machine that never network-booted) the listen address, which only
   * works on the controller's own network, so it is said in the log.
   */
  private baseUrl(m: Machine & { bootBaseUrl?: string | null }): string {
    const url = this.d.config.publicUrl || m.bootBaseUrl;
    if (url) return url.replace(/\/+$/, '');
    const guess = `http://${this.d.config.listen.replace('0.0.0.0', '127.0.0.1')}`;
    this.d.log.warn({ machine: m.name, url: guess }, 'this machine never network-booted and publicUrl is not set; its scripts point at the listen address');
    return guess;
  }

  /** Starts a deploy (`deploy`, `redeploy`, or `retry` of a failed deploy). */
  async start(machineKey: string, action: 'deploy' | 'redeploy' | 'retry', req: DeployRequest, actor: Actor, reason: string | null): Promise<TransitionResult> {
    const { store } = this.d;
    const m = await this.d.inventory.get(machineKey);
    const bootBaseUrl = (await store.db.selectFrom('machines').select('boot_base_url').where('id', '=', m.id).executeTakeFirst())?.boot_base_url ?? null;
    if (action === 'retry') {
      const last = (await listRuns(store.db, m.id, { limit: 1 }))[0];
      if (last?.kind === 'deploy') req = { ...(last.params.request as DeployRequest | undefined), ...req };
    }
    let reused: Run | null = null;
    if (req.reuseRun) {
      reused = await getRun(store.db, req.reuseRun).catch(() => {
        throw validation('reuseRun', `run '${req.reuseRun}' not found`);
      });
      if (reused.machineId !== m.id || reused.kind !== 'deploy') throw validation('reuseRun', `run ${reused.id} is not a deploy of ${m.name}`);
      req = { ...(reused.params.request as DeployRequest), reuseRun: reused.id };
    }
    const profile = await this.profileLookup(store.db, m);
    const method: DeployMethod = req.method ?? profile.deploy?.method ?? 'image';
    const runId = newId();
    const params: DeployRunParams = {
      method,
      image: null,
      imageSha256: null,
      imageSize: null,
      imageUrl: req.imageUrl ?? profile.deploy?.imageUrl ?? null,
      rootDeviceHints: req.rootDeviceHints ?? profile.deploy?.rootDeviceHints ?? null,
      profile: profile.profile,
      sshKeyCount: 0,
      reuseRun: reused?.id ?? null,
      prepareError: null,
    };
    let artifacts: { name: string; contentType: string; body: string }[] = [];
    // Every run its own callback secret, a reused run's artifacts included: the old one dies with its run.
    const secret = newSecret('plcb');
    const callbackHash = sha(secret);
    try {
      if (method === 'image') {
        const name = req.image ?? profile.deploy?.image ?? this.d.config.deploy.defaultImage;
        params.image = name;
        const image = await this.d.images.find(name);
        if (!image || image.kind !== 'disk') throw new PlinthError('validation', `image '${name}' is not in the image store`, { details: { code: 'image' } });
        params.imageSha256 = image.sha256;
        params.imageSize = image.sizeBytes;
        this.checkFits(m.facts, image.name, image.sizeBytes, params.rootDeviceHints);
      }
      if (reused) {
        const names = await listArtifacts(store.db, reused.id);
        for (const a of names) artifacts.push({ name: a.name, contentType: a.contentType, body: (await getArtifact(store.db, reused.id, a.name)).body });
      } else {
        const sshKeys = [...this.siteKeys(), ...(profile.deploy?.sshKeys ?? []), ...(req.sshKeys ?? [])];
        params.sshKeyCount = sshKeys.length;
        artifacts = await this.render(m, bootBaseUrl, profile, method, runId, sshKeys, req);
      }
    } catch (e) {
      params.prepareError = {
        code: isTemplateError(e) ? 'template' : String((e as PlinthError).details?.code ?? ((e as PlinthError).code === 'validation' ? 'template' : 'prepare')),
        message: (e as Error).message,
      };
      if (!isPlinthError(e)) this.d.log.error({ err: e, machine: m.name }, 'deploy preparation failed');
    }
    const at = iso(this.d.clock.now());
    const started = await this.d.engine.act(m.id, action, {
      actor,
      reason,
      newRunId: runId,
      params: { ...params, request: req },
      alsoInTransaction: async (trx) => {
        if (!params.prepareError) {
          if (params.image && params.imageSha256) await this.d.images.hold(trx, params.image, params.imageSha256);
          // A machine that gave its profile's quota back when a deploy failed takes it again (or is refused).
          await takeQuotaForDeploy(trx, m, at);
          for (const a of artifacts) await putArtifact(trx, runId, { ...a, now: at });
          await trx.updateTable('runs').set({ callback_hash: callbackHash, callback_sealed: this.d.secrets.encrypt(secret) }).where('id', '=', runId).execute();
        }
        await updateStep(trx, runId, 'prepare', params.prepareError ? 'failed' : 'succeeded', at, params.prepareError?.message ?? `${method}${params.image ? ` ${params.image}` : ''}, ${artifacts.length} artifact(s)${reused ? ` reused from run ${reused.id}` : ''}`);
      },
    });
    if (!params.prepareError) return started;
    return this.d.engine.act(m.id, 'fail', {
      actor: { kind: 'system', name: 'deploy' },
      runId,
      reason: params.prepareError.message,
      error: { ...params.prepareError, stage: 'prepare' },
    });
  }

  /** An image no disk can hold fails now, before anything is written. */
  private checkFits(facts: Facts | null, name: string, size: number, hints: RootDeviceHints | null): void {
    const disks = facts?.disks ?? [];
    if (disks.length === 0 || hints) return;
    const largest = disks.reduce((a, b) => (b.sizeBytes > a.sizeBytes ? b : a));
    if (largest.sizeBytes < size) {
      throw new PlinthError('validation', `image ${name} (${gib(size)}) is larger than every disk (largest: ${largest.name}, ${gib(largest.sizeBytes)})`, {
        details: { code: 'disk' },
      });
    }
  }

  private async render(
    m: Machine,
    bootBaseUrl: string | null,
    profile: ProfileDeploy,
    method: DeployMethod,
    runId: string,
    sshKeys: string[],
    req: DeployRequest,
  ): Promise<{ name: string; contentType: string; body: string }[]> {
    const baseUrl = this.baseUrl({ ...m, bootBaseUrl });
    const fileUrl = (ref: string | undefined) => (!ref ? null : /^https?:\/\//.test(ref) ? ref : `${baseUrl}/boot/files/${encodeURIComponent(ref)}`);
    const installer = req.installer ?? profile.deploy?.installer;
    const ctx = buildRenderContext({
      machine: { id: m.id, name: m.name, identity: m.identity, tags: m.tags, facts: m.facts, owner: m.owner },
      profile: profile.profile,
      vars: profile.vars,
      run: { id: runId, kind: 'deploy' },
      controller: { baseUrl, imageUrl: null },
      token: CALLBACK_PLACEHOLDER,
      ssh: { deployKeys: sshKeys },
      os: {
        ...(fileUrl(installer?.kernel) ? { kernelUrl: fileUrl(installer?.kernel)! } : {}),
        ...(fileUrl(installer?.initrd) ? { initrdUrl: fileUrl(installer?.initrd)! } : {}),
      },
    });
    const source = this.d.templates.source();
    const scope = { machine: m.id, ...(profile.profile ? { profile: profile.profile } : {}) };
    const kind: TemplateKind = method === 'image' ? 'cloud-init' : method;
    const out = Object.entries(await renderArtifacts(source, kind, ctx, scope)).map(([name, r]) => ({ name: `${kind}/${name}`, contentType: r.contentType, body: r.body }));
    if (method !== 'image') {
      const name = IPXE_TEMPLATE[method];
      const r = await renderTemplate(source, 'ipxe', name, ctx, scope);
      out.push({ name: `ipxe/${name}`, contentType: contentTypeOf('ipxe', name), body: r.body });
    }
    return out;
  }

  /** Renders what a deploy of this machine would receive now, without starting anything. */
  async preview(machineKey: string, kind: TemplateKind, name: string | null): Promise<Record<string, string>> {
    const m = await this.d.inventory.get(machineKey);
    const bootBaseUrl = (await this.d.store.db.selectFrom('machines').select('boot_base_url').where('id', '=', m.id).executeTakeFirst())?.boot_base_url ?? null;
    const profile = await this.profileLookup(this.d.store.db, m);
    const ctx = buildRenderContext({
      machine: { id: m.id, name: m.name, identity: m.identity, tags: m.tags, facts: m.facts, owner: m.owner },
      profile: profile.profile,
      vars: profile.vars,
      run: { id: 'preview', kind: 'deploy' },
      controller: { baseUrl: this.baseUrl({ ...m, bootBaseUrl }) },
      token: 'preview-token',
      ssh: { deployKeys: [...this.siteKeys(), ...(profile.deploy?.sshKeys ?? [])] },
    });
    const source = this.d.templates.source();
    const scope = { machine: m.id, ...(profile.profile ? { profile: profile.profile } : {}) };
    if (name) return { [name]: (await renderTemplate(source, kind, name, ctx, scope)).body };
    return Object.fromEntries(Object.entries(await renderArtifacts(source, kind, ctx, scope)).map(([n, r]) => [n, r.body]));
  }

  /** The parameters the agent works from, in the hello answer (src/agent/steps/protocol.ts). */
  async agentParams(run: Run): Promise<Record<string, unknown>> {
    if (run.kind === 'wipe') return { mode: run.params.wipe === 'full' ? 'full' : 'quick' };
    if (run.kind !== 'deploy') return run.params;
    const p = run.params as DeployRunParams;
    const secret = await this.callbackSecret(run.id);
    const artifact = async (name: string) => withCallbackSecret((await getArtifact(this.d.store.db, run.id, name)).body, secret);
    return {
      image: {
        url: p.imageUrl ?? `/agent/v1/images/${encodeURIComponent(p.image ?? '')}`,
        sha256: p.imageSha256,
        sizeBytes: p.imageSize,
        format: 'raw',
      },
      ...(p.rootDeviceHints ? { rootDeviceHints: p.rootDeviceHints } : {}),
      seed: {
        userData: await artifact('cloud-init/user-data'),
        metaData: await artifact('cloud-init/meta-data'),
        networkConfig: await artifact('cloud-init/network-config'),
      },
    };
  }

  /** The deploy-wait deadline grows with the image: the write at the assumed speed, twice, plus the first boot. */
  deadlineAfterHello(run: Run): number | undefined {
    if (run.kind !== 'deploy') return undefined;
    const size = Number((run.params as DeployRunParams).imageSize ?? 0);
    const estimate = (size / (this.d.config.deploy.assumedWriteMBps * 1e6)) * 2000 + parseDuration(this.d.config.deploy.firstBootAllowance);
    return Math.max(parseDuration(this.d.config.deadlines['deploy-wait']), estimate);
  }

  /** As the write progresses, the deadline follows the throughput observed so far. */
  /**
   * As the write progresses, the deadline follows the throughput observed so far — within a
   * bound: never further than the deploy-wait deadline a fresh hello would get for this image
   * (twice the write at the assumed speed plus the first boot), counted from now. A slow or
   * lying agent cannot push the deadline out to any date it likes; inconsistent numbers are
   * refused (400) and change nothing.
   */
  async onProgress(p: RunPrincipal, progress: { bytesWritten: number; totalBytes: number; bytesPerSecond: number }): Promise<void> {
    if (progress.bytesWritten > progress.totalBytes) throw validation('progress.bytesWritten', 'is larger than progress.totalBytes');
    if (p.kind !== 'deploy') return;
    const run = await getRun(this.d.store.db, p.runId);
    const size = (run.params as DeployRunParams).imageSize;
    if (size !== null && size !== undefined && progress.totalBytes !== Number(size)) throw validation('progress.totalBytes', `is not the size of the run's image (${size} bytes)`);
    if (progress.bytesPerSecond <= 0) return;
    const now = this.d.clock.now().getTime();
    const remainingMs = ((progress.totalBytes - progress.bytesWritten) / progress.bytesPerSecond) * 2000;
    const wanted = now + remainingMs + parseDuration(this.d.config.deploy.firstBootAllowance);
    const bound = now + (this.deadlineAfterHello(run) ?? 0);
    await this.d.engine.extendDeadline(p.machineId, p.runId, Math.min(wanted, bound));
  }

  /** Boot plans during deploys: local disk once the image is written, the distribution's installer for native methods. */
  readonly planner: BootPlanner = async (_m, run) => {
    if (run.kind !== 'deploy') return null;
    const reboot = run.steps.find((s) => s.name === 'reboot');
    if (reboot && reboot.status !== 'pending') return { kind: 'local', why: 'its image is written; booting the installed OS' };
    const p = run.params as DeployRunParams;
    if (p.method === 'image' || p.prepareError) return null;
    const name = `ipxe/${IPXE_TEMPLATE[p.method]}`;
    const body = (await getArtifact(this.d.store.db, run.id, name)).body;
    const secret = await this.callbackSecret(run.id);
    const plan: BootPlan = { kind: 'script', decision: `${p.method}-installer`, render: () => withCallbackSecret(body, secret) };
    return plan;
  };

  /** The run's own callback secret (unsealed), for delivery to its machine only. */
  private async callbackSecret(runId: string): Promise<string | null> {
    const row = await this.d.store.db.selectFrom('runs').select('callback_sealed').where('id', '=', runId).executeTakeFirst();
    return row?.callback_sealed ? this.d.secrets.decrypt(row.callback_sealed) : null;
  }

  /** An artifact as its machine's installer fetches it (by the callback secret in its URL): with the secret in place. */
  async deliverArtifact(run: Run, name: string): Promise<{ contentType: string; body: string; sha256: string }> {
    const a = await getArtifact(this.d.store.db, run.id, name);
    const body = withCallbackSecret(a.body, await this.callbackSecret(run.id));
    return { contentType: a.contentType, body, sha256: sha(body) };
  }

  /** The agent asks to boot from disk next: set it through the appliance and remember it for the boot service. */
  async bootLocal(p: RunPrincipal): Promise<void> {
    if (p.kind !== 'deploy') throw new PlinthError('conflict', `run ${p.runId} is a ${p.kind} run; only deploys boot their disk`);
    const at = iso(this.d.clock.now());
    await updateStep(this.d.store.db, p.runId, 'reboot', 'running', at, 'booting the installed OS');
    await recordStage(this.d.store.db, { machineId: p.machineId, attemptId: await currentAttempt(this.d.store.db, p.machineId, p.runId), runId: p.runId, at, stage: 'boot-local' });
    await this.d.engine.extendDeadline(p.machineId, p.runId, this.d.clock.now().getTime() + parseDuration(this.d.config.deploy.firstBootAllowance));
    const m = await this.d.inventory.get(p.machineId);
    if (m.provider.applianceId) {
      await this.d.power.enqueueForMachine(m.id, (mm) => ({ kind: 'boot', ref: mm.provider.ref ?? '', device: 'disk', persistent: true, then: 'none' }), { runId: p.runId });
    }
  }

  /** The active deploy run a callback secret belongs to. */
  async runByCallback(token: string): Promise<{ run: Run; machine: Machine } | null> {
    if (!token.startsWith('plcb_')) return null;
    const row = await this.d.store.db.selectFrom('runs').select(['id', 'machine_id']).where('callback_hash', '=', sha(token)).where('status', 'in', ['pending', 'running']).executeTakeFirst();
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
  async installed(run: Run, machine: Machine, event: string, remoteAddr: string | null): Promise<Machine> {
    const actor = { kind: 'agent' as const, name: `run:${run.id}` };
    const at = iso(this.d.clock.now());
    if (machine.state === 'deploying') await this.d.engine.act(machine.id, 'installer-started', { actor, runId: run.id, reason: `installed OS reported ${event}` });
    const profile = await this.profileLookup(this.d.store.db, machine);
    const primary = machine.facts?.nics.find((n) => n.link && n.ipv4.length)?.ipv4[0] ?? null;
    const configured = (typeof profile.vars.ip === 'string' ? profile.vars.ip : null) ?? primary ?? (remoteAddr && !remoteAddr.startsWith('127.') ? remoteAddr : null);
    // Facts and profile variables give addresses in CIDR form (10.0.0.5/24): the machine is reached at the address alone.
    const address = configured ? configured.replace(/\/\d{1,3}$/, '') : null;
    const r = await this.d.engine.act(machine.id, 'deploy-done', {
      actor,
      runId: run.id,
      reason: `installed OS reported ${event}`,
      alsoInTransaction: async (trx) => {
        for (const s of ['reboot', 'first-boot']) await updateStep(trx, run.id, s, 'succeeded', at);
        await recordStage(trx, { machineId: machine.id, attemptId: await currentAttempt(trx, machine.id, run.id), runId: run.id, at, stage: 'installed-os', detail: { event } });
        return { deployed_image: (run.params.image as string | null) ?? (run.params.method as string), deployed_at: at, deployed_address: address };
      },
    });
    return r.machine;
  }

  /** Forgets what a deployed machine ran once it is taken back (a redeploy keeps it until the new OS reports in). */
  async onLeftDeployed(trx: Db, r: TransitionResult): Promise<void> {
    if (r.from === 'deployed' && (r.machine.state === 'wiping' || r.machine.state === 'available')) {
      await updateMachineRow(trx, r.machine.id, { deployed_image: null, deployed_address: null, deployed_at: null }, iso(this.d.clock.now()));
    }
  }

  async machineOf(id: string): Promise<Machine> {
    return requireMachine(this.d.store.db, this.d.store.dialect, id);
  }
}

/** An artifact's body with the run's callback secret in place of the placeholder. */
function withCallbackSecret(body: string, secret: string | null): string {
  return secret ? body.replaceAll(CALLBACK_PLACEHOLDER, secret) : body;
}
