import { join, resolve } from 'node:path';
import { mkdirSync, readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config/schema.js';
import { parseListen } from './config/load.js';
import { dhcpFamily } from './config/dhcp-range.js';
import { urlHost } from './core/url-host.js';
import { EventLog } from './events/service.js';
import { WebhookService } from './webhooks/service.js';
import { webhookMetrics } from './webhooks/stats.js';
import { Store } from './store/database.js';
import { systemClock, type Clock } from './core/clock.js';
import { createLogger, type Logger } from './core/logger.js';
import { Allocator } from './inventory/allocation.js';
import { ControllerMetrics } from './metrics/controller-metrics.js';
import { metricsRoutes } from './api/routes/metrics.js';
import { installerRoutes } from './api/routes/installer.js';
import { ensureDataDirId } from './config/data-dir.js';
import { InventoryService } from './inventory/service.js';
import { Enroller } from './inventory/enrol.js';
import { LifecycleEngine } from './lifecycle/engine.js';
import { DeadlineSweeper } from './lifecycle/sweeper.js';
import { TokenService } from './auth/tokens.js';
import { buildApp, type RouteRegistrar } from './api/app.js';
import type { AppServices } from './api/context.js';
import { InspectionService } from './inspection/service.js';
import { BootService, type InstallerLocator } from './boot/service.js';
import { installerIsoDir, removeMachineIso } from './installer/index.js';
import { EnrolmentGate } from './boot/enrolment.js';
import { TICKET_KEY_PURPOSE } from './runs/run-tokens.js';
import { HOST_TOKEN_PURPOSE } from './auth/host-tokens.js';
import { HostVersions } from './trees/host-versions.js';
import { RollService } from './trees/rolls.js';
import { hostRoutes } from './api/routes/hosts.js';
import { bootRoutes } from './api/routes/boot.js';
import { agentRoutes } from './api/routes/agent.js';
import { AgentSession } from './boot/agent-session.js';
import { DeployRuns } from './deploy/deploy-runs.js';
import { existsSync } from 'node:fs';
import { TftpServer } from './boot/tftp.js';
import { DhcpService, interfaceAddress, interfaceNetmask, type DhcpServiceOptions } from './dhcp/service.js';
import { bootNetwork, NO_BOOT_NETWORK, prefixNetmask, type BootNetwork } from './inventory/boot-address.js';
import { hostname } from 'node:os';
import { SecretBox, verifySecretKey } from './auth/secrets.js';
import { ApplianceService } from './appliances/service.js';
import { Enlister } from './appliances/enlist.js';
import { MachineImporter } from './sources/machine-import.js';
import { NetboxSync } from './sources/netbox-sync.js';
import { netboxRoutes } from './api/routes/netbox.js';
import { PowerService } from './power/service.js';
import { SITE_CACHE_KEY_PURPOSE, SiteCaches } from './power/site-caches.js';
import { ProviderRegistry, BUILTIN_PROVIDER_FACTORIES } from './providers/registry.js';
import { createLabProvider } from './lab/provider.js';
import { applianceRoutes } from './api/routes/appliances.js';
import { powerRoutes } from './api/routes/power.js';
import { managerRoutes } from './api/routes/managers.js';
import { newId } from './core/ids.js';
import { MatchingService } from './profiles/matching.js';
import { ProfileService } from './profiles/profile-service.js';
import { PoolService } from './profiles/pool-service.js';
import { MatchPreviewService } from './profiles/preview-service.js';
import { profileRoutes } from './api/routes/profiles.js';
import { poolRoutes } from './api/routes/pools.js';
import { lookupProfileDeploy } from './profiles/deploy-lookup.js';
import { ImageStore } from './images/store.js';
import { TemplateStore } from './deploy/template-store.js';
import { DeployService } from './deploy/service.js';
import { MulticastSessions } from './deploy/multicast.js';
import { ConsoleInstalls } from './deploy/console.js';
import { OperatorActions } from './deploy/operator-actions.js';
import { applianceForwards, Holds } from './deploy/holds.js';
import { TateruMachineService } from './deploy/tateru.js';
import { tateruRoutes } from './api/routes/tateru.js';
import { RunService } from './runs/service.js';
import { imageRoutes } from './api/routes/images.js';
import { multicastRoutes } from './api/routes/multicast.js';
import { treeRoutes } from './api/routes/trees.js';
import { scriptRoutes } from './api/routes/scripts.js';
import { ScriptService } from './runs/scripts.js';
import { healthRoutes } from './api/routes/health.js';
import { HealthService } from './health/service.js';
import { TreeStore } from './trees/store.js';
import { RsyncDaemon } from './trees/rsyncd.js';
import { templateRoutes } from './api/routes/templates.js';
import { fileSender } from './api/send-file.js';
import { bootListener, serverTls } from './config/tls.js';
import { createBootListener } from './api/boot-listener.js';
import type { Server } from 'node:http';

/**
 * The composition root: the only place that decides which store, clock and logger the
 * controller uses and wires the components together. `plinth serve` and the tests both
 * start controllers through here.
 */
export interface Controller {
  app: FastifyInstance;
  services: AppServices;
  boot: BootService;
  inspection: InspectionService;
  power: PowerService;
  registry: ProviderRegistry;
  /** Webhooks and their outbox; its loop runs with the other background loops. */
  webhooks: WebhookService;
  /** The Prometheus metrics `GET /metrics` serves; other components add theirs with `metrics.extend`. */
  metrics: ControllerMetrics;
  sweeper: DeadlineSweeper;
  /** Plinth's supervised dnsmasq; null with dhcp.mode off. */
  dhcp: DhcpService | null;
  log: Logger;
  /** The address it listens on once `listen()` resolved. */
  url: string | null;
  /** The plain-HTTP boot listener's address once `listen()` resolved, when `tls.bootHttpListen` is set. */
  bootUrl: string | null;
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface ControllerOptions {
  clock?: Clock;
  logger?: Logger;
  /** Do not start background loops (tests drive them by hand). */
  noBackground?: boolean;
  extraRoutes?: RouteRegistrar[];
  /** Where the installer's kernel and initramfs are (default: DATA_DIR/boot/installer). */
  installer?: InstallerLocator;
  /** Provider implementations (default: the built-in ones plus the QEMU lab). */
  registry?: ProviderRegistry;
  /**
   * DHCP (dhcp.mode proxy/full): the command that runs dnsmasq (default `dhcp.dnsmasq`; tests
   * prefix `nsenter --net=/run/netns/NS --`), Plinth's address on the interface when it cannot be read here.
   */
  dhcp?: Pick<DhcpServiceOptions, 'onEvent'> & { command?: string[]; serverAddress?: string };
  /** Multicast sessions: a command prefix for udp-sender (tests: `nsenter --net=/run/netns/NS --`). */
  multicast?: { prefix?: string[] };
}

/** The built-in providers and the local QEMU lab. */
export function defaultRegistry(): ProviderRegistry {
  const registry = new ProviderRegistry(BUILTIN_PROVIDER_FACTORIES);
  registry.register('qemu', createLabProvider);
  return registry;
}

/** The installer as `plinth installer build` leaves it in the data directory. */
export function defaultInstallerLocator(dataDir: string): InstallerLocator {
  const kernel = join(dataDir, 'boot', 'installer', 'vmlinuz');
  const initrd = join(dataDir, 'boot', 'installer', 'initrd.img');
  return () => (existsSync(kernel) && existsSync(initrd) ? { kernel, initrd } : null);
}

const SHUTDOWN_GRACE_MS = 10_000;

/** The version in package.json (beside src/ and dist/ alike). */
/** The host command tree deploys install (bin/edeploy: POSIX sh and rsync). */
const EDEPLOY_SCRIPT = readFileSync(new URL('../bin/edeploy', import.meta.url), 'utf8');
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** This controller as `GET /api/v1/controller` reports it; the data directory gets its id here. */
function controllerIdentity(dataDir: string, database: 'sqlite' | 'postgres') {
  const path = resolve(dataDir);
  return { id: `${hostname()}:${process.pid}:${newId().slice(0, 8)}`, version: VERSION, database, dataDir: { path, id: ensureDataDirId(path) } };
}

export function databaseUrl(config: Config): string {
  return config.databaseUrl || join(config.dataDir, 'plinth.sqlite');
}

/**
 * The subnet boot addresses are fixed in: in dhcp.mode full dhcp.range's, with its netmask or
 * the interface's as dnsmasq would take it, and dhcp.gateway / dhcp.dns; otherwise
 * vmedia.network (the addresses virtual-media ISOs carry) with vmedia.gateway / vmedia.dns.
 * A string says why there is none.
 */
function provisioningNetwork(config: Config, serverAddress: string | null): BootNetwork | string {
  const list = (s: string) => s.split(',').filter(Boolean);
  if (config.dhcp.mode === 'full') {
    if (dhcpFamily(config.dhcp) === 6) return "this controller's DHCP range (dhcp.range) is IPv6, and fixed boot addresses are IPv4: its machines take DHCPv6 or SLAAC addresses";
    const [first, , netmask] = config.dhcp.range.split(',');
    const mask = netmask || interfaceNetmask(config.dhcp.interface);
    const net = first && mask ? bootNetwork(first, mask, serverAddress ?? '') : null;
    return net ? { ...net, gateway: config.dhcp.gateway, dns: list(config.dhcp.dns) } : "the netmask of dhcp.range's subnet is unknown: give it as the range's third field";
  }
  if (config.vmedia.network) {
    const [base, bits] = config.vmedia.network.split('/') as [string, string];
    const host = (() => {
      try {
        return new URL(config.publicUrl).hostname;
      } catch {
        return '';
      }
    })();
    const net = bootNetwork(base, prefixNetmask(Number(bits)), serverAddress ?? host);
    if (net) return { ...net, gateway: config.vmedia.gateway, dns: list(config.vmedia.dns), source: 'vmedia.network' };
  }
  return config.dhcp.mode === 'proxy'
    ? "in dhcp.mode proxy the site's DHCP server owns the addresses; a fixed boot address is carried only by a virtual-media ISO (vmedia.network), which is not set"
    : NO_BOOT_NETWORK;
}

export async function createController(config: Config, opts: ControllerOptions = {}): Promise<Controller> {
  const log = opts.logger ?? createLogger(config.logLevel);
  // Checked before anything is opened: a bad path or a half-set boot listener stops here.
  const tls = serverTls(config);
  const bootHttp = bootListener(config);
  const dhcpAddress = config.dhcp.mode === 'off' ? null : (opts.dhcp?.serverAddress ?? interfaceAddress(config.dhcp.interface, dhcpFamily(config.dhcp)));
  // Firmware, OS installers and installed OSes fetch from the boot URL (plain HTTP when a
  // boot listener is set); only the installer's agent, which trusts the CA bundle built
  // into it, is sent to `publicUrl`.
  const machineConfig: Config = bootHttp ? { ...config, publicUrl: bootHttp.publicUrl } : config;
  const clock = opts.clock ?? systemClock;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o750 });
  const store = await Store.open({ url: databaseUrl(config) });
  const bootNet = provisioningNetwork(config, dhcpAddress);
  const inventory = new InventoryService(store, clock, { bootNetwork: bootNet });
  const tokens = new TokenService(store, clock);
  const engine = new LifecycleEngine({
    store,
    clock,
    config,
    onListenerError: (e, r) => log.error({ err: e, machine: r.machine.name, action: r.transition.action }, 'transition side effect failed'),
  });
  const secrets = SecretBox.load(config.secretKey, config.dataDir);
  if (secrets.created) log.info({ path: secrets.created }, `secret key for credentials at rest created at ${secrets.created}`);
  await verifySecretKey(store.db, secrets.box).catch(async (e: unknown) => {
    await store.close();
    throw e;
  });
  const appliances = new ApplianceService(store, clock, secrets.box);
  const ticketKey = secrets.box.deriveKey(TICKET_KEY_PURPOSE);
  const registry = opts.registry ?? defaultRegistry();
  // New credentials or address: the next call uses them, not a kept session or an open breaker.
  appliances.onUpdated((a) => registry.forgetAppliance(a.type, a.name));
  const power = new PowerService({
    store,
    clock,
    engine,
    appliances,
    registry,
    log,
    config: { ...config.providers, ms: config.ms.providers },
    claimer: `controller:${hostname()}:${process.pid}:${newId().slice(0, 8)}`,
    // What BMCs fetch: the boot URL (the plain-HTTP boot listener's when there is one).
    ...(machineConfig.publicUrl
      ? { installerIsoUrl: `${machineConfig.publicUrl.replace(/\/+$/, '')}/boot/installer.iso`, httpBootUrl: `${machineConfig.publicUrl.replace(/\/+$/, '')}/boot/ipxe.efi` }
      : {}),
    onEject: (machineId) => removeMachineIso(installerIsoDir(config.dataDir), machineId),
  });
  const enroller = new Enroller({ store, clock, inventory });
  const enlister = new Enlister({ store, clock, enroller, engine, appliances, power });
  const images = new ImageStore(store, clock, config.dataDir);
  // An upload cut short by a crash left its temp file; nothing else ever removes it.
  const leftovers = await images.removeLeftovers();
  if (leftovers.length) log.info({ files: leftovers }, `removed ${leftovers.length} leftover upload file(s) from the image store`);
  const templates = new TemplateStore(store, clock);
  const trees = new TreeStore(config.dataDir, clock);
  trees.removeLeftovers();
  const rsyncd = config.trees.rsyncListen
    ? new RsyncDaemon(
        {
          installDir: trees.installDir,
          metadataDir: trees.metadataDir,
          ...(({ host, port }) => ({ address: host, port }))(parseListen(config.trees.rsyncListen)),
          hostsAllow: config.trees.hostsAllow,
          root: process.getuid?.() === 0,
        },
        join(config.dataDir, 'rsyncd'),
        config.trees.rsync,
        (event, fields) => log.debug(fields, event),
      )
    : null;
  // udp-sender children, one per open session, on the provisioning interface.
  const multicast = new MulticastSessions({ interface: config.deploy.multicastInterface || config.dhcp.interface, portbase: config.deploy.multicastPortbase, log, ...(opts.multicast?.prefix ? { prefix: opts.multicast.prefix } : {}) });
  const deploy = new DeployService({ store, clock, engine, inventory, images, templates, config: machineConfig, log, secrets: secrets.box, multicast, trees: (ref) => trees.resolve(ref) });
  deploy.profileLookup = lookupProfileDeploy;
  const installer = opts.installer ?? defaultInstallerLocator(config.dataDir);
  // Remote sites' caches fetch by sha256 what the controller serves its machines: images (and files beside them), the installer.
  const siteCaches = new SiteCaches({ store, clock, keyRoot: secrets.box.deriveKey(SITE_CACHE_KEY_PURPOSE) });
  siteCaches.addResolver(async (sha256) => {
    const path = await images.pathBySha256(sha256);
    return path ? { path, stage: 'image' } : null;
  });
  siteCaches.addFiles(() => {
    const i = installer();
    return i ? [{ path: i.kernel, stage: 'kernel' }, { path: i.initrd, stage: 'initrd' }] : [];
  });
  const deployRuns = new DeployRuns({ store, clock, engine, inventory, power, config: machineConfig, secrets: secrets.box, profileLookup: lookupProfileDeploy, multicast, edeployScript: EDEPLOY_SCRIPT, siteCaches });
  engine.onTransitionInTransaction((trx, r) => deploy.onLeftDeployed(trx, r));
  const rolls = new RollService({ store, clock, trees });
  engine.onTransitionInTransaction((trx, r) => rolls.onTransition(trx, r));
  const hostVersions = new HostVersions({ store, clock, key: secrets.box.deriveKey(HOST_TOKEN_PURPOSE), trees, rolls });
  const webhooks = new WebhookService({
    store,
    clock,
    secrets: secrets.box,
    settings: { ...config.ms.webhooks, maxAttempts: config.webhooks.maxAttempts, parallel: config.webhooks.parallel },
    claimer: `controller:${hostname()}:${process.pid}:${newId().slice(0, 8)}`,
    pollMs: config.ms.webhooks.poll,
    onError: (e) => log.error({ err: e }, 'webhook delivery failed'),
  });
  const events = new EventLog(store, { pollMs: config.ms.events.poll, onError: (e) => log.error({ err: e }, 'reading the event log failed') });
  const holds = new Holds({ store, clock, engine, inventory, forwards: applianceForwards(appliances, registry) });
  const actions = new OperatorActions({ store, inventory, engine, deploy, holds });
  const importer = new MachineImporter({ store, inventory, appliances });
  const netbox = new NetboxSync({ importer, inventory, config: config.netbox, intervalMs: config.ms.netbox.interval, log });
  const services: AppServices = { config, identity: controllerIdentity(config.dataDir, store.dialect), store, clock, inventory, allocator: new Allocator(store, clock), engine, tokens, appliances, enlister, importer, power, deploy, actions, holds, runs: new RunService(store), images, templates, events, webhooks };
  const inspection = new InspectionService(engine, enroller);
  new MatchingService({ store, clock }).attach(engine, inspection, inventory);
  const profiles = new ProfileService(store, clock);
  const pools = new PoolService(store, clock);
  const boot = new BootService({
    store,
    clock,
    enroller,
    engine,
    log,
    installer,
    kernelArgs: config.installerKernelArgs,
    installWithoutOrders: config.console.installWithoutOrders,
    publicUrl: machineConfig.publicUrl,
    agentUrl: config.publicUrl.replace(/\/+$/, ''),
    listen: config.listen,
    ticketKey,
    enrolment: new EnrolmentGate(config.enrolment, clock),
    isoDir: installerIsoDir(config.dataDir),
    bootNetwork: bootNet,
    siteCaches,
  });
  boot.addPlanner(deployRuns.planner);
  const metrics = new ControllerMetrics(store.db);
  metrics.extend(webhookMetrics(store.db));
  engine.onTransition(async (r) => {
    metrics.transition(r.from, r.machine.state);
    if (r.finishedRunId) {
      const run = await services.runs.get(r.finishedRunId);
      if (run.finishedAt) metrics.runFinished(run.kind, run.status, (Date.parse(run.finishedAt) - Date.parse(run.createdAt)) / 1000);
    }
  });
  const stopObservingProviders = registry.resilience.observe((call) => metrics.providerCall(call));
  const sendFile = fileSender({ dataDir: config.dataDir, accelRedirect: config.accelRedirect });
  const agentSession = new AgentSession({ store, clock, engine, inspection, deployRuns, holds, images, config, profileLookup: lookupProfileDeploy });
  const app = await buildApp(services, {
    logger: log,
    https: tls,
    extraRoutes: [
      // First: its hook counts the boot routes' requests.
      metricsRoutes(metrics),
      bootRoutes({ boot, store, clock, installer, deployRuns, images, sendFile, ipxeDir: config.tftp.root }),
      agentRoutes({ store, session: agentSession, deployRuns, images, sendFile, ticketKey, console: new ConsoleInstalls({ store, clock, inventory, images, deploy, multicast, ticketKey }) }),
      hostRoutes(hostVersions),
      tateruRoutes({ store, tateru: new TateruMachineService({ store, inventory, holds }), session: agentSession, ticketKey }),
      applianceRoutes,
      powerRoutes,
      managerRoutes({ siteCaches, sendFile }),
      profileRoutes(profiles, new MatchPreviewService(store)),
      poolRoutes(pools),
      treeRoutes(trees, rolls),
      scriptRoutes(new ScriptService({ store, clock })),
      healthRoutes(new HealthService({ store })),
      netboxRoutes(netbox),
      imageRoutes,
      multicastRoutes(multicast),
      installerRoutes,
      templateRoutes,
      ...(opts.extraRoutes ?? []),
    ],
  });
  const sweeper = new DeadlineSweeper({ store, engine, clock, log }, config.ms.sweepInterval);
  sweeper.add({ name: 'tree rolls', sweepOnce: () => rolls.expireOverdue(log) });

  const bootstrap = await tokens.ensureBootstrapAdmin(config.dataDir);
  if (bootstrap?.created) log.info({ path: bootstrap.path }, `admin token written to ${bootstrap.path}`);

  const tftp = config.tftp.enabled
    ? new TftpServer({
        root: config.tftp.root,
        ...parseListen(config.tftp.listen),
        maxTransfers: config.tftp.maxTransfers,
        transferTimeoutMs: config.ms.tftp.transferTimeout,
        log: (event, fields) => log.debug(fields, event),
      })
    : null;
  const dhcp =
    config.dhcp.mode === 'off' || dhcpAddress === null
      ? null
      : new DhcpService({
          store,
          clock,
          log,
          dir: join(config.dataDir, 'dhcp'),
          command: opts.dhcp?.command ?? [config.dhcp.dnsmasq],
          onEvent: (e, outcome) => {
            metrics.dhcpAnswer(e.kind, e.client);
            opts.dhcp?.onEvent?.(e, outcome);
          },
          plan: {
            mode: config.dhcp.mode,
            serverAddress: dhcpAddress,
            interface: config.dhcp.interface,
            range: config.dhcp.range,
            gateway: config.dhcp.gateway,
            dns: config.dhcp.dns,
            leaseSeconds: Math.max(120, Math.round(config.ms.dhcp.leaseTime / 1000)),
            // Firmware fetches over plain HTTP: the boot listener's URL, else publicUrl, else this host on the interface.
            // (the port is the one listened on: `listen` may say 0)
            bootUrl: (address) => machineConfig.publicUrl || `http://${urlHost(address)}:${controller.url ? new URL(controller.url).port : parseListen(config.listen).port}`,
          },
        });
  if (dhcp) {
    boot.onAttemptStarted((trx, a) => dhcp.trace.adoptPending(trx, a));
    // A changed boot address or MAC reaches dnsmasq now, not at the next periodic sync.
    inventory.onUpdated(() => void dhcp.syncHosts());
    if (!config.tftp.enabled) log.warn('dhcp.mode is on but tftp.enabled is false: PXE ROMs are sent to a TFTP server that does not answer (iPXE and HTTP boot clients are fine)');
  }
  let bootServer: Server | null = null;
  let closed = false;
  const controller: Controller = {
    app,
    services,
    boot,
    inspection,
    power,
    registry,
    metrics,
    webhooks,
    sweeper,
    dhcp,
    log,
    url: null,
    bootUrl: null,
    async listen() {
      const { host, port } = parseListen(config.listen);
      const address = await app.listen({ host, port });
      controller.url = address;
      if (bootHttp) {
        const server = createBootListener(app);
        const b = parseListen(bootHttp.listen);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(b.port, b.host, () => resolve());
        });
        bootServer = server;
        const a = server.address() as { address: string; port: number; family: string };
        controller.bootUrl = `http://${urlHost(a.address)}:${a.port}`;
        log.info({ address: controller.bootUrl, publicUrl: bootHttp.publicUrl }, 'boot listener (plain HTTP, public boot endpoints only) listening');
      }
      if (tftp) {
        const t = await tftp.start();
        log.info({ host: t.host, port: t.port, root: config.tftp.root }, 'TFTP server listening');
      }
      if (rsyncd) {
        rsyncd.start();
        log.info({ listen: config.trees.rsyncListen, conf: rsyncd.confFile }, 'rsync daemon (trees) started');
      }
      if (dhcp) {
        const d = await dhcp.start();
        log.info({ mode: config.dhcp.mode, interface: config.dhcp.interface, serverAddress: d.serverAddress, conf: d.confFile }, 'DHCP (dnsmasq) started');
      }
      if (!opts.noBackground) {
        sweeper.start();
        power.start();
        webhooks.start();
        netbox.start({ kind: 'system', name: 'netbox' });
      }
      log.info({ address, database: store.dialect, dataDir: config.dataDir }, 'controller listening');
      return address;
    },
    async close() {
      if (closed) return;
      closed = true;
      // Open event streams end now rather than at the shutdown grace's cut.
      events.stop();
      await sweeper.stop();
      await power.stop();
      await webhooks.stop();
      stopObservingProviders();
      await netbox.stop();
      await registry.closeAll().catch(() => undefined);
      await tftp?.stop();
      await dhcp?.stop();
      await rsyncd?.stop();
      await multicast.stop();
      if (bootServer) {
        const server = bootServer;
        const closing = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const cut = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        await closing;
        clearTimeout(cut);
      }
      // In-flight requests get a grace period; then connections still open (a client that
      // vanished mid-request, a kept-alive socket) are cut so shutdown never hangs.
      const grace = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      await app.close();
      clearTimeout(grace);
      await store.close();
      log.info('controller stopped');
    },
  };
  return controller;
}
