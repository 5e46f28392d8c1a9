import type { Store, Db } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newSecret, readableName } from '../core/ids.js';
import { isPlinthError, PlinthError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Enroller } from '../inventory/enrol.js';
import type { LifecycleEngine } from '../lifecycle/engine.js';
import type { Machine, Actor } from '../inventory/machine.js';
import { requireMachine } from '../inventory/machine-rows.js';
import { hasAnyIdentity, normalizeIdentity, type Identity } from '../inventory/identity.js';
import { isTransitional } from '../core/states.js';
import { getRun, type Run } from '../runs/runs.js';
import { claimRun, mintTicket, runClaim } from '../runs/run-tokens.js';
import { chainScript, claimedScript, installerScript, localBootScript, notEnrolledScript, retryLaterScript, unidentifiedScript } from './ipxe.js';
import { controllerBaseUrl } from './base-url.js';
import { netbootCorrelation } from '../inspection/netboot.js';
import type { EnrolmentGate } from './enrolment.js';
import type { BootPlan, BootPlanner } from '../runs/boot-plan.js';
import { buildInstallerIso, builtInstallerIso, isoKernelCmdline, machineIsoDir, staticNetworkArgs } from '../installer/index.js';
import { prefixNetmask, type BootNetwork } from '../inventory/boot-address.js';
import type { AgentTicketAnswer } from '../protocol/agent.js';
import { pruneChains, recordStages, rememberChain, startAttempt, takeChain } from '../runs/trace.js';
import type { SiteCaches } from '../power/site-caches.js';

export const BOOT_ACTOR: Actor = { kind: 'system', name: 'boot-service' };

/** What a machine-script request tells us (iPXE settings, as query parameters). */
export interface BootQuery {
  uuid?: string;
  serial?: string;
  asset?: string;
  manufacturer?: string;
  product?: string;
  mac?: string;
  arch?: string;
  platform?: string;
  chain?: string;
  [macN: string]: string | undefined;
}

/** The query parameters the chain script sends (see IDENTITY_QUERY), and how long each may be. */
const BOOT_QUERY_KEYS = new Set(['uuid', 'serial', 'asset', 'manufacturer', 'product', 'mac', ...Array.from({ length: 8 }, (_, i) => `mac${i}`), 'arch', 'platform', 'chain', 'attempt']);
export const BOOT_QUERY_MAX_LENGTH = 128;

/**
 * The first parameter of a boot request that is not one iPXE sends, or whose value is too long
 * or carries control characters (they would reach the inventory, the trace and terminals), or
 * null when all are fine. Such a request is answered without touching the inventory.
 */
export function badBootQueryField(q: Record<string, unknown>): { field: string; why: string } | null {
  for (const [k, v] of Object.entries(q)) {
    if (!BOOT_QUERY_KEYS.has(k)) return { field: k.slice(0, 32), why: 'is not a boot parameter' };
    if (typeof v !== 'string') return { field: k, why: 'is given more than once' };
    if (v.length > BOOT_QUERY_MAX_LENGTH) return { field: k, why: `is longer than ${BOOT_QUERY_MAX_LENGTH} characters` };
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(v)) return { field: k, why: 'contains control characters' };
  }
  return null;
}

export interface BootContext {
  /** The configured public URL, or the controller's address on the connection (never the Host header). */
  baseUrl: string;
  remoteAddr: string | null;
}

/** Where the installer's kernel and initramfs are, when built. */
export type InstallerLocator = () => { kernel: string; initrd: string } | null;

export interface BootServiceDeps {
  store: Store;
  clock: Clock;
  enroller: Enroller;
  engine: LifecycleEngine;
  log: Logger;
  installer: InstallerLocator;
  kernelArgs: string;
  publicUrl: string;
  /** plinth.url for the installer's agent when it differs from `publicUrl` (a plain-HTTP boot listener in front of HTTPS). */
  agentUrl?: string;
  /** host:port the controller listens on, the base URL of requests without a socket address. */
  listen: string;
  /** Signs run tickets (SecretBox.deriveKey(TICKET_KEY_PURPOSE)). */
  ticketKey: Buffer;
  enrolment: EnrolmentGate;
  /** Where installer ISOs are built and kept (DATA_DIR/boot/installer-iso); without it, no ISO is served. */
  isoDir?: string;
  /** The subnet, gateway and DNS of fixed boot addresses, which a machine's own ISO carries (a string: there is none). */
  bootNetwork?: BootNetwork | string | null;
  /** Remote sites' caches: a machine at a site with one loads the installer from there, the controller as fallback. */
  siteCaches?: Pick<SiteCaches, 'forMachine' | 'sha256Of'>;
  /** console.installWithoutOrders: an available machine that boots with no orders is held at its console menu (docs/console.md). */
  installWithoutOrders?: boolean;
}

/** The hold an available machine booted with no orders gets (console.installWithoutOrders): the console on, no keys, back to available. */
const CONSOLE_HOLD_PARAMS = { authorizedKeys: [] as string[], returnTo: 'available', console: true } as const;

const CHAIN_TTL_MS = 10 * 60_000;

/** The identity a boot request names (iPXE's settings, or an ISO-booted agent's sysfs). */
function identityOf(q: BootQuery): Identity {
  const macs = [q.mac, ...Array.from({ length: 8 }, (_, i) => q[`mac${i}`])].filter((m): m is string => Boolean(m));
  return normalizeIdentity({
    systemUuid: q.uuid ?? null,
    serial: q.serial ?? null,
    assetTag: q.asset ?? null,
    manufacturer: q.manufacturer ?? null,
    productName: q.product ?? null,
    macs,
  });
}

/**
 * Told, inside the transaction that starts it, of every boot attempt of an identified machine
 * (the DHCP trace records there what it saw of the machine before it was known).
 */
export type AttemptListener = (trx: Db, a: { machineId: string; attemptId: string; runId: string | null; macs: string[] }) => Promise<void>;

/**
 * The boot service decides, from the lifecycle, what a network-booting machine runs: an
 * unknown machine is enrolled on the spot and sent to the installer for inspection; a machine
 * with pending work boots the installer with a ticket for its run (until an installer claims
 * the run; then a boot request gets no ticket, only a script that waits); anything else boots from
 * its local disk. It always answers with an iPXE script, never with an error page.
 */
export class BootService {
  private readonly planners: BootPlanner[] = [];
  private readonly attemptListeners: AttemptListener[] = [];
  private readonly isoBuilds = new Map<string, Promise<string>>();
  constructor(private readonly deps: BootServiceDeps) {}

  addPlanner(p: BootPlanner): void {
    this.planners.push(p);
  }

  onAttemptStarted(l: AttemptListener): void {
    this.attemptListeners.push(l);
  }

  baseUrl(conn: { protocol: string; localAddress: string | undefined; localPort: number | undefined }): string {
    return controllerBaseUrl(this.deps.publicUrl, conn, this.deps.listen);
  }

  async chain(ctx: BootContext): Promise<string> {
    const nonce = newSecret('c').slice(2, 18);
    const now = this.deps.clock.now();
    try {
      // A thousand machines booting at once each write one: group commit (store/group-commit.ts).
      await this.deps.store.groupTransaction((trx) => rememberChain(trx, nonce, iso(now), ctx.remoteAddr));
      if (Math.random() < 0.05) await pruneChains(this.deps.store.db, iso(new Date(now.getTime() - CHAIN_TTL_MS)));
    } catch (e) {
      // The trace is a diagnostic: a machine must boot even if it cannot be recorded.
      this.deps.log.warn({ err: e }, 'could not record a chain-script fetch');
    }
    return chainScript(ctx.baseUrl, nonce);
  }

  async machineScript(q: BootQuery, ctx: BootContext): Promise<{ script: string; machine: Machine | null; decision: string }> {
    const identity = identityOf(q);
    if (!hasAnyIdentity(identity)) {
      return { script: unidentifiedScript('no usable UUID, serial, asset tag or MAC address was sent'), machine: null, decision: 'unidentified' };
    }
    try {
      return await this.script(identity, q, ctx);
    } catch (e) {
      this.deps.log.error({ err: e, identity }, 'boot decision failed');
      return { script: retryLaterScript(ctx.baseUrl, 'the controller could not decide what this machine boots'), machine: null, decision: 'error' };
    }
  }

  /**
   * Finds the machine a boot request names, enrolling it when unknown. A boot request never
   * adds identity to a known machine (its MACs, serial… come from anyone who can send a
   * request; only inspection facts teach the inventory), and enrolment passes the gate
   * (switch, rate) or is refused. An unknown machine may be one the controller powered on to
   * network-boot that has nothing to match it by (inspection/netboot.ts).
   */
  private findOrEnrol(identity: Identity) {
    return this.deps.enroller.findOrEnrol(identity, {
      actor: BOOT_ACTOR,
      known: { lock: false, absorb: false },
      admit: () => this.deps.enrolment.admit(),
      correlation: netbootCorrelation({ dialect: this.deps.store.dialect, clock: this.deps.clock, actor: BOOT_ACTOR }),
      enrol: async () => ({ name: readableName(), input: {}, reason: 'network-booted unannounced' }),
    });
  }

  /**
   * What a booting machine gets, decided from its lifecycle: the machine (enrolled when
   * unknown, its inspection started when it was waiting for one), its run, the plan, and
   * whether an installer already holds the run. The boot attempt is recorded with the
   * decision; `stage` names how the machine asked (an iPXE script, or an ISO-booted agent).
   */
  private async decide(identity: Identity, q: BootQuery, ctx: BootContext, stage: 'machine-script' | 'agent-ticket') {
    const { store, clock, engine } = this.deps;
    const found = await this.findOrEnrol(identity);
    if (found.outcome === 'refused') {
      this.deps.log.warn({ identity, why: found.why }, 'unknown machine not enrolled');
      return { outcome: 'refused' as const, why: found.why };
    }
    let { machine } = found;
    if (machine.state === 'enrolled' && !machine.maintenance) {
      try {
        machine = (await engine.act(machine.id, 'inspect', { actor: BOOT_ACTOR, reason: `${stage === 'agent-ticket' ? 'booted the installer ISO' : 'network-booted'} while enrolled` })).machine;
      } catch (e) {
        // A concurrent request (an iPXE retry) started it first.
        if (!isPlinthError(e)) throw e;
        machine = await requireMachine(store.db, store.dialect, machine.id);
      }
    }
    if (machine.state === 'available' && !machine.maintenance && this.deps.installWithoutOrders) {
      // No orders, and the site lets the console install on an available machine: a console hold
      // the boot service starts, whose ticket is this boot's and the machine's own (docs/security.md).
      try {
        const reason = `${stage === 'agent-ticket' ? 'booted the installer ISO' : 'network-booted'} with no orders (console.installWithoutOrders)`;
        machine = (await engine.act(machine.id, 'console-boot', { actor: BOOT_ACTOR, reason, params: { ...CONSOLE_HOLD_PARAMS } })).machine;
      } catch (e) {
        // A concurrent request (an iPXE retry) started it first, or an operator acted meanwhile.
        if (!isPlinthError(e)) throw e;
        machine = await requireMachine(store.db, store.dialect, machine.id);
      }
    }
    const run = machine.currentRunId && isTransitional(machine.state) ? await getRun(store.db, machine.currentRunId) : null;
    const idle = machine.state === 'available' && !this.deps.installWithoutOrders ? ' (console.installWithoutOrders is off: its console may not install)' : '';
    let plan: BootPlan = run ? { kind: 'installer' } : { kind: 'local', why: `it is ${machine.state}${idle}` };
    if (run) {
      for (const p of this.planners) {
        const chosen = await p(machine, run);
        if (chosen) {
          plan = chosen;
          break;
        }
      }
    }
    const installer = plan.kind === 'installer' ? this.deps.installer() : null;
    // A run an installer already holds hands out nothing more to a mere boot request.
    const claim = run && plan.kind !== 'local' ? await runClaim(store.db, run.id) : null;
    const claimed = claim?.claimed ?? false;
    const decision = claimed
      ? 'claimed'
      : plan.kind === 'installer'
        ? installer || stage === 'agent-ticket'
          ? 'installer'
          : 'installer-missing'
        : plan.kind === 'local'
          ? 'local'
          : plan.decision;
    const at = iso(clock.now());
    // Database work only, so concurrent boot requests share a commit (store/group-commit.ts);
    // DHCP lines the trace adopts here are forgotten if the batch fails, as with a lone transaction.
    const attemptId = await store.groupTransaction(async (trx) => {
      const id = await startAttempt(trx, {
        machineId: machine.id,
        runId: run?.id ?? null,
        at,
        remoteAddr: ctx.remoteAddr,
        platform: q.platform || null,
        arch: q.arch || null,
        bootMac: identity.macs.includes((q.mac ?? '').toLowerCase()) ? q.mac!.toLowerCase() : (identity.macs[0] ?? null),
        decision,
      });
      for (const l of this.attemptListeners) await l(trx, { machineId: machine.id, attemptId: id, runId: run?.id ?? null, macs: identity.macs });
      // The /boot.ipxe fetch that led here (by its nonce), this request, and the local boot it was told to do: one insert.
      const chain = q.chain ? await takeChain(trx, q.chain) : null;
      const stages = [
        ...(chain ? [{ at: chain.at, stage: 'chain-script', detail: chain.remoteAddr ? { remoteAddr: chain.remoteAddr } : null }] : []),
        { at, stage, detail: { decision } },
        ...(plan.kind === 'local' ? [{ at, stage: 'local-boot', detail: { why: plan.why } }] : []),
      ];
      // The controller's own address on this connection (never the Host header): where a deploy's seeds point when publicUrl is unset.
      await recordStages(trx, { machineId: machine.id, attemptId: id, runId: run?.id ?? null, at, stages, also: { boot_base_url: ctx.baseUrl } });
      return id;
    });
    return { outcome: 'decided' as const, machine, run, plan, installer, claim, claimed, decision, attemptId };
  }

  private async script(identity: Identity, q: BootQuery, ctx: BootContext) {
    const d = await this.decide(identity, q, ctx, 'machine-script');
    if (d.outcome === 'refused') {
      const script = this.deps.enrolment.isEnabled() ? retryLaterScript(ctx.baseUrl, d.why, 60, 'enrolment is paused') : notEnrolledScript(d.why);
      return { script, machine: null, decision: 'not-enrolled' };
    }
    const { machine, run, plan, installer, claim, claimed, decision, attemptId } = d;
    const { store } = this.deps;
    let script: string;
    if (plan.kind === 'local') script = localBootScript(machine.name, plan.why);
    else if (claimed || !claim) script = claimedScript(ctx.baseUrl, machine.name);
    else if (plan.kind === 'script') {
      // No agent will claim the run: handing the script out does, once.
      const won = await claimRun(store.db, run!.id, claim.epoch, mintTicket(this.deps.ticketKey, run!.id, claim.epoch));
      script = won ? plan.render({ baseUrl: ctx.baseUrl, attemptId }) : claimedScript(ctx.baseUrl, machine.name);
    } else if (!installer) {
      this.deps.log.error({ machine: machine.name }, 'the installer is not built: run `plinth installer build`');
      script = retryLaterScript(ctx.baseUrl, 'the installer is not built on the controller (plinth installer build)');
    } else {
      const ticket = mintTicket(this.deps.ticketKey, run!.id, claim.epoch);
      script = installerScript({
        machineName: machine.name,
        runKind: run!.kind,
        ...(await this.installerUrls(machine, run!.id, installer, `${ctx.baseUrl}/boot/installer`, attemptId)),
        // plinth.console=1: the operator enabled the installer's console menu for this hold (docs/console.md).
        cmdline: `plinth.url=${this.deps.agentUrl || ctx.baseUrl} plinth.run=${run!.id} plinth.token=${ticket}${run!.params.console === true ? ' plinth.console=1' : ''} ${this.deps.kernelArgs}`.trim(),
      });
    }
    return { script, machine, decision };
  }

  /**
   * Where a machine loads the installer from: its site's cache when it has one (with the
   * controller as the fallback of each file), else the controller. The cache reports what it
   * served to the boot trace (SiteCaches.recordFetch).
   */
  private async installerUrls(machine: Machine, runId: string, files: { kernel: string; initrd: string }, controllerBase: string, attemptId: string) {
    const controller = { kernelUrl: `${controllerBase}/vmlinuz?attempt=${attemptId}`, initrdUrl: `${controllerBase}/initrd.img?attempt=${attemptId}` };
    const caches = this.deps.siteCaches;
    if (!caches) return controller;
    try {
      const cache = await caches.forMachine(this.deps.store.db, machine.id);
      if (!cache) return controller;
      const [kernel, initrd] = await Promise.all([caches.sha256Of(files.kernel), caches.sha256Of(files.initrd)]);
      return {
        kernelUrl: cache.fileUrl({ sha256: kernel, name: 'vmlinuz', runId }),
        initrdUrl: cache.fileUrl({ sha256: initrd, name: 'initrd.img', runId }),
        fallback: controller,
      };
    } catch (e) {
      this.deps.log.warn({ err: e, machine: machine.name }, 'site cache URLs not made; the installer loads from the controller');
      return controller;
    }
  }

  /**
   * An installer booted from the ISO (virtual media) asks for its run's ticket, naming itself
   * by the identity a network boot sends. It is the machine-script decision without iPXE: the
   * same enrolment, the same claim rule (a ticket only while no installer holds the run), the
   * same trace. A run whose deploy boots an OS installer rather than Plinth's has nothing for
   * it; nor has a machine without work (it should boot its disk).
   */
  async agentTicket(q: BootQuery, ctx: BootContext): Promise<AgentTicketAnswer> {
    const identity = identityOf(q);
    if (!hasAnyIdentity(identity)) return { decision: 'none', why: 'no usable UUID, serial, asset tag or MAC address was sent' };
    let d: Awaited<ReturnType<BootService['decide']>>;
    try {
      d = await this.decide(identity, q, ctx, 'agent-ticket');
    } catch (e) {
      this.deps.log.error({ err: e, identity }, 'agent ticket decision failed');
      return { decision: 'wait', retryAfterSeconds: 10, why: 'the controller could not decide what this machine runs' };
    }
    if (d.outcome === 'refused') return this.deps.enrolment.isEnabled() ? { decision: 'wait', retryAfterSeconds: 60, why: d.why } : { decision: 'none', why: d.why };
    const { machine, run, plan, claim, claimed } = d;
    if (plan.kind === 'local') return { decision: 'none', why: `machine ${machine.name} has nothing to run: ${plan.why}` };
    if (plan.kind === 'script') return { decision: 'none', why: `machine ${machine.name}'s run ${run!.id} boots an OS installer over the network, not Plinth's installer` };
    if (claimed || !claim) return { decision: 'wait', retryAfterSeconds: 15, why: `run ${run!.id} of machine ${machine.name} is held by another installer` };
    return { decision: 'ticket', machine: machine.name, runId: run!.id, token: mintTicket(this.deps.ticketKey, run!.id, claim.epoch) };
  }

  /**
   * The installer ISO for this controller (built on first use, then cached): its kernel command
   * line carries the URL the agent reaches the controller at. A machine's own ISO (`machine`, its
   * id) also carries its fixed boot address with the network's prefix, gateway and DNS (`ip=`,
   * `BOOTIF=`), for a virtual-media boot that no DHCP server answers; without a boot address it
   * is the common ISO. Null when the installer is not built.
   */
  async installerIso(ctx: BootContext, o: { machine?: string; signal?: AbortSignal } = {}): Promise<string | null> {
    const files = this.deps.installer();
    if (!files || !this.deps.isoDir) return null;
    let cmdline = isoKernelCmdline(this.deps.agentUrl || ctx.baseUrl, this.deps.kernelArgs);
    let dir = this.deps.isoDir;
    let keepOld: number | undefined;
    if (o.machine !== undefined) {
      const m = await requireMachine(this.deps.store.db, this.deps.store.dialect, o.machine);
      // By id only: a public URL must not let names be tried for their network settings.
      if (m.id !== o.machine) throw new PlinthError('not_found', `machine '${o.machine}' not found`, { details: { machine: o.machine } });
      const net = this.deps.bootNetwork;
      if (m.bootAddress && net && typeof net !== 'string') {
        cmdline = `${cmdline} ${staticNetworkArgs({ address: m.bootAddress, netmask: prefixNetmask(net.prefix), ...(net.gateway ? { gateway: net.gateway } : {}), dns: net.dns ?? [], mac: m.identity.macs[0] ?? null })}`;
        dir = machineIsoDir(this.deps.isoDir, m.id);
        keepOld = 0;
      }
    }
    const built = builtInstallerIso({ kernel: files.kernel, initrd: files.initrd, cmdline, dir });
    if (built) return built;
    const key = `${files.kernel}\0${files.initrd}\0${cmdline}`;
    let pending = this.isoBuilds.get(key);
    if (!pending) {
      pending = buildInstallerIso({
        kernel: files.kernel,
        initrd: files.initrd,
        cmdline,
        dir,
        ...(keepOld !== undefined ? { keepOld } : {}),
        log: (line) => this.deps.log.info(line),
        ...(o.signal ? { signal: o.signal } : {}),
      })
        .then((r) => r.path)
        .finally(() => this.isoBuilds.delete(key));
      this.isoBuilds.set(key, pending);
    }
    return pending;
  }
}
