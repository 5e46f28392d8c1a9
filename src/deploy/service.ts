import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db, Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
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
import { buildRenderContext, contentTypeOf, isTemplateError, renderArtifacts, renderTemplate, type TemplateKind } from '../templates/index.js';
import type { ImageStore } from '../images/store.js';
import type { TemplateStore } from './template-store.js';
import { takeQuotaForDeploy } from '../profiles/matching.js';
import type { SecretBox } from '../auth/secrets.js';
import { DEFAULT_SCRIPT_TIMEOUT_SECONDS, getScript } from '../runs/scripts.js';
import { MULTICAST_TRANSPORTS, type MulticastTransport, type Script } from '../protocol/agent.js';
import { isAgentMethod, mergeOsSettings, type DeployMethod, type OnSuccess, type OsSettingsInput, type RootDeviceHints } from '../protocol/deploy.js';
import { checkDiskLayout, DEFAULT_TREE_LAYOUT, type DiskLayout } from '../protocol/disk-layout.js';
import { CALLBACK_PLACEHOLDER, IPXE_TEMPLATE, sha256Hex, type DeployRunParams } from './run-params.js';
import { MULTICAST_DEFAULTS, parseRate, type MulticastSessions } from './multicast.js';

/**
 * Deployment: from an `available` machine to an installed OS that reports in, by writing an
 * image (the default) or by booting a distribution's own installer (preseed, kickstart,
 * autoinstall). Everything the machine will receive is rendered before anything happens —
 * a missing image, an image no disk can hold, a template error fail the deploy at once with
 * `lastError.code` = image, disk or template — and kept with the run, so that a redeploy
 * with `reuseRun` hands out byte-identical artifacts.
 */
export { CALLBACK_PLACEHOLDER } from './run-params.js';
export type { DeployMethod } from '../protocol/deploy.js';

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
  /** Installer and installed-system settings, each over the profile's (`os.*` in templates). */
  os?: OsSettingsInput;
  /** Added to the installed system's kernel command line (instead of the profile's). */
  kernelArgs?: string;
  /** A template of the method's kind rendered in place of its main one (instead of the profile's). */
  template?: string;
  /** Receive the image in a multicast session with the other machines deploying it (image deploys from the controller). */
  multicast?: { transport?: MulticastTransport; rate?: string; minReceivers?: number; maxWaitSeconds?: number; ttl?: number };
  /**
   * Image deploys from the controller: the agent reads the disk and fetches only the chunks it
   * does not hold already. Default: a redeploy of the image the machine runs.
   */
  differential?: boolean;
  /** Tree deploys: the tree, `ROLE-VERSION`. */
  tree?: string;
  /** Tree deploys: partitions, arrays, volumes and file systems (instead of the profile's; default DEFAULT_TREE_LAYOUT). */
  diskLayout?: DiskLayout;
  /** Tree deploys: eDeploy's ONSUCCESS (instead of the profile's; default kexec). */
  onSuccess?: OnSuccess;
  /** Image and tree deploys: the configure step, scripts run in the installer before the disks are touched. */
  scripts?: { name: string; content: string; timeoutSeconds?: number }[];
  /** Profiles: the configure step's scripts by their names in the library (when the request gives none). */
  configureScripts?: string[];
}

/** Finds a stored tree by its `ROLE-VERSION` name (trees/store.ts); not_found otherwise. */
export type TreeResolver = (ref: string) => { role: string; version: string };

/** What a machine's profile says about deploying it (filled in by matching). */
export interface ProfileDeploy {
  profile: string | null;
  vars: Record<string, unknown>;
  deploy: DeployRequest | null;
}
export type ProfileLookup = (db: Db, machine: Machine) => Promise<ProfileDeploy>;
const NO_PROFILE: ProfileLookup = async () => ({ profile: null, vars: {}, deploy: null });

/** The render context's `os` settings: the request's over the profile's (over the templates' defaults); kernel arguments likewise. */
function osOf(profile: ProfileDeploy, req: DeployRequest): OsSettingsInput & { kernelArgs?: string } {
  const kernelArgs = req.kernelArgs ?? profile.deploy?.kernelArgs;
  return { ...mergeOsSettings(profile.deploy?.os, req.os), ...(kernelArgs !== undefined ? { kernelArgs } : {}) };
}

/** The template kind whose artifacts a deploy by this method serves. */
const kindOf = (method: DeployMethod): TemplateKind => (isAgentMethod(method) ? 'cloud-init' : method);

const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

export interface DeployServiceDeps {
  store: Store;
  clock: Clock;
  engine: LifecycleEngine;
  inventory: InventoryService;
  images: ImageStore;
  templates: TemplateStore;
  config: Config;
  log: Logger;
  profileLookup?: ProfileLookup;
  /** Seals each run's callback secret. */
  secrets: SecretBox;
  /** Multicast deploy sessions (absent: a deploy asking for one is refused). */
  multicast?: MulticastSessions;
  /** The tree store's lookup; without it tree deploys fail their preparation. */
  trees?: TreeResolver;
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

  /**
   * Starts a deploy (`deploy`, `redeploy`, `retry` of a failed deploy, or `console-install`
   * from the installer's console menu). `inTransaction` runs in the transition's transaction
   * once the run exists and its preparation succeeded (the console claims the run there).
   */
  async start(
    machineKey: string,
    action: 'deploy' | 'redeploy' | 'retry' | 'console-install',
    req: DeployRequest,
    actor: Actor,
    reason: string | null,
    inTransaction?: (trx: Db, runId: string) => Promise<void>,
  ): Promise<TransitionResult> {
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
    // Naming a tree (in the request, else in a profile that names no method) makes it a tree deploy.
    const method: DeployMethod = req.method ?? (req.tree ? 'tree' : undefined) ?? profile.deploy?.method ?? (profile.deploy?.tree ? 'tree' : 'image');
    if (method !== 'tree') {
      for (const field of ['tree', 'diskLayout', 'onSuccess'] as const) if (req[field] !== undefined) throw validation(field, `is for tree deploys (method tree), not ${method}`);
    }
    const treeRef = method === 'tree' ? (req.tree ?? profile.deploy?.tree) : undefined;
    if (method === 'tree' && !treeRef) throw validation('tree', 'is required for a tree deploy (ROLE-VERSION), in the request or the profile');
    const diskLayout = method === 'tree' ? (req.diskLayout ?? profile.deploy?.diskLayout ?? DEFAULT_TREE_LAYOUT) : null;
    if (diskLayout) {
      const problem = checkDiskLayout(diskLayout, req.diskLayout ? 'diskLayout' : 'profile.deploy.diskLayout');
      if (problem) throw validation(problem.field, problem.message);
    }
    if (req.differential !== undefined && method !== 'image') throw validation('differential', `is for image deploys, not ${method}`);
    if (req.differential && (req.imageUrl ?? profile.deploy?.imageUrl)) throw validation('differential', 'applies to images served by the controller (their chunk index), not one fetched from imageUrl');
    if (req.scripts !== undefined && !isAgentMethod(method)) throw validation('scripts', `configure scripts run in Plinth's installer (image and tree deploys), not in the ${method} installer`);
    const configureScripts = await this.configureScripts(req, profile, method);
    const runId = newId();
    const multicast = req.multicast ? this.multicastSettings(req, method, req.imageUrl ?? profile.deploy?.imageUrl ?? null) : null;
    const params: DeployRunParams = {
      method,
      image: null,
      imageSha256: null,
      imageSize: null,
      imageUrl: req.imageUrl ?? profile.deploy?.imageUrl ?? null,
      rootDeviceHints: req.rootDeviceHints ?? profile.deploy?.rootDeviceHints ?? null,
      // A reused run's artifacts are its own, byte for byte: so are its kernel arguments.
      kernelArgs: reused ? ((reused.params as DeployRunParams).kernelArgs ?? null) : (req.kernelArgs ?? profile.deploy?.kernelArgs ?? '').trim() || null,
      profile: profile.profile,
      sshKeyCount: 0,
      reuseRun: reused?.id ?? null,
      prepareError: null,
      ...(method === 'tree' ? { tree: null, diskLayout, onSuccess: req.onSuccess ?? profile.deploy?.onSuccess ?? 'kexec' } : {}),
      ...(configureScripts.length ? { configureScripts } : {}),
    };
    let artifacts: { name: string; contentType: string; body: string }[] = [];
    // Every run its own callback secret, a reused run's artifacts included: the old one dies with its run.
    const secret = newSecret('plcb');
    const callbackHash = sha256Hex(secret);
    try {
      if (method === 'image') {
        const name = req.image ?? profile.deploy?.image ?? this.d.config.deploy.defaultImage;
        params.image = name;
        const image = await this.d.images.find(name);
        if (!image || image.kind !== 'disk') throw new PlinthError('validation', `image '${name}' is not in the image store`, { details: { code: 'image' } });
        // One file system, no partition table: it goes into a partition (the console's keep-partitions), never over a disk.
        if (image.layout === 'partition' && action !== 'console-install') {
          throw new PlinthError('validation', `image '${name}' is a partition image (one file system): the installer's console writes it into a partition (keep-partitions); a deploy writes whole-disk images`, { details: { code: 'image' } });
        }
        params.imageSha256 = image.sha256;
        params.imageSize = image.sizeBytes;
        if (!params.imageUrl) {
          // The image from the controller: its chunk index (computed now for an image stored before
          // indexes). Without one the agent streams the whole image, as it always could.
          params.imageIndexSha256 = await this.d.images.chunkIndex(image).then(
            (index) => index.sha256,
            (e: unknown) => {
              this.d.log.warn({ err: e, image: image.name }, 'no chunk index for this image; the agent streams all of it');
              return null;
            },
          );
          params.differential = req.differential ?? (action === 'redeploy' && m.deployment.image === image.name);
        }
        this.checkFits(m.facts, image.name, image.sizeBytes, params.rootDeviceHints);
        if (multicast && this.d.multicast) {
          // Joins the waiting session of this image version and transport, or opens one (udp-sender starts now, uftp once its machines say hello).
          const session = this.d.multicast.join({ name: image.name, sha256: image.sha256, sizeBytes: image.sizeBytes, file: this.d.images.path(image) }, multicast, runId);
          params.multicast = { session: session.id, transport: session.transport, portbase: session.portbase, maxWaitSeconds: session.maxWaitSeconds };
        }
      }
      if (method === 'tree') {
        if (!this.d.trees) throw new PlinthError('validation', 'this controller serves no trees', { details: { code: 'tree' } });
        try {
          params.tree = this.d.trees(treeRef!);
        } catch (e) {
          throw new PlinthError('validation', `tree '${treeRef}' is not in the tree store (plinth tree list)`, { details: { code: 'tree' }, cause: e });
        }
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
          await inTransaction?.(trx, runId);
        }
        const what = params.image ? ` ${params.image}` : params.tree ? ` ${params.tree.role}-${params.tree.version}` : '';
        await updateStep(trx, runId, 'prepare', params.prepareError ? 'failed' : 'succeeded', at, params.prepareError?.message ?? `${method}${what}, ${artifacts.length} artifact(s)${reused ? ` reused from run ${reused.id}` : ''}`);
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

  /**
   * The configure step's scripts: the request's, else those the profile names from the library
   * (their content copied into the run now). A name the library lacks is refused naming it.
   */
  private async configureScripts(req: DeployRequest, profile: ProfileDeploy, method: DeployMethod): Promise<Script[]> {
    if (req.scripts?.length) return req.scripts.map((sc) => ({ name: sc.name, content: sc.content, timeoutSeconds: sc.timeoutSeconds ?? DEFAULT_SCRIPT_TIMEOUT_SECONDS }));
    const names = profile.deploy?.configureScripts ?? [];
    if (names.length && !isAgentMethod(method)) throw validation('profile.deploy.configureScripts', `configure scripts run in Plinth's installer (image and tree deploys), not in the ${method} installer`);
    const scripts: Script[] = [];
    for (const [i, name] of names.entries()) {
      const sc = await getScript(this.d.store.db, name).catch((e: unknown) => {
        if (e instanceof PlinthError && e.code === 'not_found') throw validation(`profile.deploy.configureScripts[${i}]`, `no script '${name}' in the library (plinth script add)`);
        throw e;
      });
      scripts.push({ name: sc.name, content: sc.content, timeoutSeconds: sc.timeoutSeconds });
    }
    return scripts;
  }

  /** A multicast request's settings with their defaults; refused (naming the field) where multicast cannot apply. */
  private multicastSettings(req: DeployRequest, method: DeployMethod, imageUrl: string | null) {
    if (!this.d.multicast) throw new PlinthError('conflict', 'this controller runs no multicast sessions');
    if (method !== 'image') throw validation('multicast', `applies to image deploys, not the ${method} method`);
    if (imageUrl) throw validation('multicast', 'applies to images served by the controller, not one fetched from imageUrl');
    if (req.reuseRun) throw validation('multicast', 'cannot be combined with reuseRun');
    const o = req.multicast ?? {};
    const transport = o.transport ?? MULTICAST_DEFAULTS.transport;
    if (!MULTICAST_TRANSPORTS.includes(transport)) throw validation('multicast.transport', `'${String(transport)}' is not one of ${MULTICAST_TRANSPORTS.join(', ')}`);
    if (o.ttl !== undefined && transport !== 'uftp') throw validation('multicast.ttl', 'applies to uftp sessions (udpcast stays on its segment)');
    return {
      transport,
      ttl: o.ttl ?? MULTICAST_DEFAULTS.ttl,
      rateBitsPerSecond: o.rate !== undefined ? parseRate(o.rate, 'multicast.rate') : MULTICAST_DEFAULTS.rateBitsPerSecond,
      minReceivers: o.minReceivers ?? MULTICAST_DEFAULTS.minReceivers,
      maxWaitSeconds: o.maxWaitSeconds ?? MULTICAST_DEFAULTS.maxWaitSeconds,
    };
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
        ...osOf(profile, req),
        ...(fileUrl(installer?.kernel) ? { kernelUrl: fileUrl(installer?.kernel)! } : {}),
        ...(fileUrl(installer?.initrd) ? { initrdUrl: fileUrl(installer?.initrd)! } : {}),
      },
    });
    const source = this.d.templates.source();
    const scope = { machine: m.id, ...(profile.profile ? { profile: profile.profile } : {}) };
    const kind = kindOf(method);
    const main = req.template ?? profile.deploy?.template;
    const rendered = await renderArtifacts(source, kind, ctx, scope, main ? { main } : {});
    const out = Object.entries(rendered).map(([name, r]) => ({ name: `${kind}/${name}`, contentType: r.contentType, body: r.body }));
    if (!isAgentMethod(method)) {
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
      os: osOf(profile, {}),
    });
    const source = this.d.templates.source();
    const scope = { machine: m.id, ...(profile.profile ? { profile: profile.profile } : {}) };
    if (name) return { [name]: (await renderTemplate(source, kind, name, ctx, scope)).body };
    const main = profile.deploy?.template;
    const options = main && kind === kindOf(profile.deploy?.method ?? 'image') ? { main } : {};
    return Object.fromEntries(Object.entries(await renderArtifacts(source, kind, ctx, scope, options)).map(([n, r]) => [n, r.body]));
  }

  /** Forgets what a deployed machine ran once it is taken back (a redeploy keeps it until the new OS reports in). */
  async onLeftDeployed(trx: Db, r: TransitionResult): Promise<void> {
    if (r.from === 'deployed' && (r.machine.state === 'wiping' || r.machine.state === 'available')) {
      await updateMachineRow(trx, r.machine.id, { deployed_image: null, deployed_address: null, deployed_at: null, deployed_host_keys: null, deployed_role: null, deployed_version: null }, iso(this.d.clock.now()));
    }
  }

  async machineOf(id: string): Promise<Machine> {
    return requireMachine(this.d.store.db, this.d.store.dialect, id);
  }
}
