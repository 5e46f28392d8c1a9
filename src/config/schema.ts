import { Type, type Static } from 'typebox';

/**
 * The one source of configuration defaults and documentation. Precedence:
 * defaults < plinth.yaml < PLINTH_* environment < command-line flags.
 * Environment names are derived from the path: `deadlines.deploy-wait` is
 * PLINTH_DEADLINES_DEPLOY_WAIT, `dataDir` is PLINTH_DATA_DIR.
 */
const IPV4 = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}';
const IPV4_OPTIONAL_PATTERN = `^(${IPV4})?$`;
/** `first,last[,netmask]`, or one address (the network of a proxy), or empty. */
const IPV4_RANGE_PATTERN = `^(${IPV4}(,${IPV4}(,${IPV4})?)?)?$`;
/** The shape of an IPv6 address (hex groups and colons, maybe a dotted tail); `loadConfig` checks it strictly. */
const IPV6 = '[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){1,7}(:(\\d{1,3}\\.){3}\\d{1,3})?';
/** An IPv6 `first,last[,prefix length]` (full mode only). */
const IPV6_RANGE_PATTERN = `${IPV6},${IPV6}(,\\d{1,3})?`;

export const DURATION_PATTERN = '^\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)?$';

/**
 * A duration as written in the configuration ("90s", "15m", "2h"). Branded so that code
 * cannot treat the text as a number: the loaded configuration carries every duration in
 * milliseconds as well (`config.ms`), parsed once by loadConfig, and that is what the rest
 * of the controller reads.
 */
export type DurationText = string & { readonly durationText: true };

const Duration = (def: string, description: string) =>
  Type.Unsafe<DurationText>(Type.String({ default: def, pattern: DURATION_PATTERN, description }));

export const ConfigSchema = Type.Object(
  {
    listen: Type.String({ default: '0.0.0.0:7708', description: 'host:port the controller listens on; IPv6 in brackets, `[::]:7708` for every IPv4 and IPv6 address' }),
    dataDir: Type.String({ default: './var', description: 'SQLite file, admin token, boot artifacts, images, caches' }),
    databaseUrl: Type.String({
      default: '',
      description: 'postgres://… to use PostgreSQL; empty for embedded SQLite in the data directory',
    }),
    publicUrl: Type.String({
      default: '',
      description:
        "URL machines use to reach this controller (boot scripts, agents, seeds, callbacks); default: the controller's local address of the connection each boot request came in on (never the request's Host header)",
    }),
    apiUrl: Type.String({
      default: '',
      pattern: '^(https?://.+)?$',
      description:
        "URL API clients (Ansible, Tateru's client) reach this controller at, served as Tateru's `managedBy`; default: the controller's local address of the connection the request came in on (never the request's Host header)",
    }),
    accelRedirect: Type.String({
      default: '',
      description:
        'internal location of a front nginx that serves DATA_DIR (e.g. /_plinth-data/): kernels, initramfs and images are answered with X-Accel-Redirect there, nginx sends the bytes; empty: the controller streams them',
    }),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info', description: 'log level of the JSON logs on stdout' },
    ),
    secretKey: Type.String({
      default: '',
      description: 'base64 32-byte key for secrets at rest; default: DATA_DIR/secret.key, created on first start',
    }),
    bodyLimit: Type.Integer({ default: 1_048_576, minimum: 1024, description: 'largest API request body in bytes' }),
    sweepInterval: Duration('5s', 'how often overdue transitional states are looked for'),
    releaseWipe: Type.Union([Type.Literal('none'), Type.Literal('quick'), Type.Literal('full')], {
      default: 'quick',
      description: 'wipe mode of `release` when none is given',
    }),
    installerKernelArgs: Type.String({
      default: 'console=tty0 console=ttyS0,115200n8',
      description: 'kernel arguments added when machines boot the installer (besides plinth.url/run/token)',
    }),
    afterInspection: Type.Union([Type.Literal('poweroff'), Type.Literal('reboot')], {
      default: 'poweroff',
      description: 'what the installer does once inspection is done: power the machine off, or reboot (to local disk)',
    }),
    installerBuild: Type.Object(
      {
        packages: Type.String({ default: '', pattern: '^[a-z0-9+., -]*$', description: 'Debian packages `plinth installer build` adds to the installer (comma-separated, e.g. `sysbench,fio` for health checks); `--package` adds more' }),
        modules: Type.String({ default: '', pattern: '^[A-Za-z0-9_./, -]*$', description: 'kernel modules the installer keeps beyond its own (comma-separated: a name like `raid1`, or a path below kernel/ like `drivers/md/`); `--module` adds more' }),
        firmware: Type.String({ default: '', pattern: '^[a-z0-9+., -]*$', description: "firmware packages from Debian's non-free-firmware the installer carries (comma-separated, e.g. `firmware-bnx2`); `--firmware` adds more" }),
      },
      { default: {} },
    ),
    tls: Type.Object(
      {
        cert: Type.String({ default: '', description: 'PEM certificate (chain) file: with `tls.key`, the controller serves HTTPS on `listen`; empty: plain HTTP' }),
        key: Type.String({ default: '', description: 'PEM private key file of `tls.cert`' }),
        bootHttpListen: Type.String({
          default: '',
          description:
            'host:port of a plain-HTTP listener serving only the public boot endpoints, for firmware that cannot do HTTPS with this certificate (iPXE); needs `tls.bootPublicUrl` and `publicUrl`',
        }),
        bootPublicUrl: Type.String({
          default: '',
          description: 'http:// URL machines reach `tls.bootHttpListen` at: boot scripts, kernels, installer seeds and phone-home use it; the installer agent keeps `publicUrl`',
        }),
      },
      { default: {} },
    ),
    tftp: Type.Object(
      {
        enabled: Type.Boolean({ default: false, description: 'serve the iPXE binaries over TFTP for PXE ROMs that must chain-load iPXE' }),
        listen: Type.String({ default: '0.0.0.0:69', description: 'host:port of the TFTP server' }),
        root: Type.String({ default: '/usr/lib/ipxe', description: "directory served (Debian's ipxe package: undionly.kpxe, ipxe.efi)" }),
        maxTransfers: Type.Integer({
          default: 128,
          minimum: 1,
          maximum: 10000,
          description: 'TFTP transfers under way at once (each holds a socket and a file); a read request beyond them is answered with an ERROR',
        }),
        transferTimeout: Duration('5m', 'total lifetime of one TFTP transfer, whatever block timeout its client negotiates'),
      },
      { default: {} },
    ),
    dhcp: Type.Object(
      {
        mode: Type.Union([Type.Literal('off'), Type.Literal('proxy'), Type.Literal('full')], {
          default: 'off',
          description:
            "off: the site's DHCP server points machines at this controller; proxy: the site's server hands out addresses and Plinth's dnsmasq only tells PXE / HTTP-boot clients what to boot; full: Plinth's dnsmasq is the DHCP server of the provisioning network",
        }),
        interface: Type.String({ default: '', pattern: '^[A-Za-z0-9_.:@-]{0,15}$', description: 'network interface dnsmasq serves on (needed by proxy and full); it answers on no other' }),
        range: Type.String({
          default: '',
          pattern: `${IPV4_RANGE_PATTERN}|^${IPV6_RANGE_PATTERN}$`,
          description:
            'full mode: first,last[,netmask] addresses handed out (e.g. 10.0.0.100,10.0.0.200), or an IPv6 first,last[,prefix length] (e.g. fd00::100,fd00::1ff,64: DHCPv6 plus router advertisements for SLAAC); proxy mode: optional IPv4 network (default: the interface address)',
        }),
        gateway: Type.String({ default: '', pattern: IPV4_OPTIONAL_PATTERN, description: 'full mode: router handed to clients (option 3); empty: none (dnsmasq would offer itself)' }),
        dns: Type.String({
          default: '',
          pattern: `^(${IPV4}(,${IPV4})*)?$|^${IPV6}(,${IPV6})*$`,
          description: 'full mode: comma-separated DNS servers handed to clients (option 6; with an IPv6 range, IPv6 servers in DHCPv6 option 23); empty: none',
        }),
        leaseTime: Duration('1h', "full mode: lease time of the addresses handed out (at least 2m, dnsmasq's minimum)"),
        dnsmasq: Type.String({ default: 'dnsmasq', description: "dnsmasq program run (Debian's dnsmasq-base)" }),
      },
      { default: {} },
    ),
    vmedia: Type.Object(
      {
        network: Type.String({
          default: '',
          pattern: `^(${IPV4}/([0-9]|[12][0-9]|3[0-2]))?$`,
          description:
            "IPv4 subnet (e.g. 10.78.0.0/24) of the fixed boot addresses that virtual-media boots carry where no DHCP server answers (dhcp.mode off or proxy): a machine's bootAddress goes on the kernel command line of its own installer ISO; empty: ISOs take DHCP",
        }),
        gateway: Type.String({ default: '', pattern: IPV4_OPTIONAL_PATTERN, description: "router on the machine's ISO with its boot address (in vmedia.network); empty: none" }),
        dns: Type.String({ default: '', pattern: `^(${IPV4}(,${IPV4}){0,1})?$`, description: "at most two DNS servers on the machine's ISO with its boot address; empty: none" }),
      },
      { default: {} },
    ),
    trees: Type.Object(
      {
        rsyncListen: Type.String({
          default: '',
          pattern: '^((\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]*):[0-9]{1,5})?$',
          description: "host:port of the read-only rsync daemon serving trees (eDeploy's modules `install` and `metadata`; eDeploy used port 831); empty: not started",
        }),
        hostsAllow: Type.String({ default: '', pattern: '^[0-9A-Fa-f:./, ]*$', description: 'addresses or networks allowed to read trees over rsync (rsync `hosts allow`); empty: anyone who reaches the port' }),
        rsync: Type.String({ default: 'rsync', description: "rsync program run as the daemon (Debian's rsync)" }),
      },
      { default: {} },
    ),
    metrics: Type.Object(
      {
        public: Type.Boolean({ default: false, description: 'serve GET /metrics without a token (false: a reader token is needed)' }),
      },
      { default: {} },
    ),
    netbox: Type.Object(
      {
        url: Type.String({ default: '', pattern: '^(https?://.+)?$', description: 'NetBox to pull devices from (e.g. https://netbox.example.net); empty: no NetBox' }),
        token: Type.String({ default: '', description: "NetBox API token: a v2 token `nbt_KEY.SECRET` is sent as Bearer, an older one as `Token`; PLINTH_NETBOX_TOKEN keeps it out of the file" }),
        filter: Type.Object(
          {
            site: Type.String({ default: '', description: 'only devices of this site (slug)' }),
            role: Type.String({ default: '', description: 'only devices of this role (slug)' }),
            tag: Type.String({ default: '', description: 'only devices with this tag (slug)' }),
          },
          { default: {} },
        ),
        interval: Duration('0s', 'how often the controller syncs from NetBox by itself (0: only `plinth netbox sync`)'),
        writeBack: Type.Boolean({ default: false, description: "write each machine's provision state and serial to the device's custom fields plinth_state and plinth_serial" }),
        insecure: Type.Boolean({ default: false, description: "do not verify NetBox's TLS certificate" }),
      },
      { default: {} },
    ),
    enrolment: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'enrol unknown machines that network-boot (false: they are told so and boot locally)' }),
        ratePerSecond: Type.Number({ default: 10, exclusiveMinimum: 0, maximum: 10000, description: 'enrolments of unknown machines per second, per controller, after the burst' }),
        burst: Type.Integer({ default: 200, minimum: 1, maximum: 100000, description: 'unknown machines enrolled at once before the rate applies' }),
      },
      { default: {} },
    ),
    console: Type.Object(
      {
        installWithoutOrders: Type.Boolean({
          default: false,
          description:
            "an available machine that boots the installer with no orders is held at its console menu, which may install on it (docs/console.md); false: it boots its disk (network boot) or its menu offers no install (ISO)",
        }),
      },
      { default: {} },
    ),
    agent: Type.Object(
      {
        logLimit: Type.Integer({
          default: 64 * 1024 * 1024,
          minimum: 65536,
          maximum: 1024 * 1024 * 1024,
          description: 'bytes of installer log one run may store (lines and step messages); beyond it the agent gets 413',
        }),
      },
      { default: {} },
    ),
    deploy: Type.Object(
      {
        defaultImage: Type.String({ default: 'debian-12', description: 'image deployed when neither the request nor the profile names one' }),
        sshKeysFile: Type.String({
          default: '',
          description: 'site-wide SSH public keys put on every deployed machine (default DATA_DIR/authorized_keys, if present)',
        }),
        assumedWriteMBps: Type.Integer({ default: 20, minimum: 1, description: 'image write speed assumed before a deploy reports its own, for its deadline' }),
        firstBootAllowance: Duration('20m', 'time allowed from the reboot after writing to the installed OS reporting in'),
        multicastInterface: Type.String({
          default: '',
          pattern: '^[A-Za-z0-9_.:@-]{0,15}$',
          description: 'interface multicast deploy sessions send on (udp-sender); default dhcp.interface, else the one udp-sender picks',
        }),
        multicastPortbase: Type.Integer({
          default: 9000,
          minimum: 1024,
          maximum: 65000,
          description: 'first UDP port of multicast deploy sessions; each open session takes two ports from here on (16 at most)',
        }),
      },
      { default: {} },
    ),
    providers: Type.Object(
      {
        parallel: Type.Integer({ default: 64, minimum: 1, maximum: 10000, description: 'provider jobs this controller runs at once (across appliances)' }),
        timeout: Duration('60s', 'time limit of one provider call (power, boot device)'),
        powerVerifyTimeout: Duration('60s', 'after a power action, how long to wait for the system to show the target state before the action fails'),
        jobDeadline: Duration('10m', 'a provider job not done by then fails, and the operation with it'),
        lease: Duration('3m', 'how long a claimed job stays with its runner before it is handed out again (a controller renews it while the job runs)'),
        syncInterval: Duration('60s', 'power-state sync of every provider-controlled machine (jittered ±20%; 0 turns it off)'),
      },
      { default: {} },
    ),
    webhooks: Type.Object(
      {
        poll: Duration('1s', 'how often new events are turned into webhook deliveries and due deliveries are sent'),
        maxAttempts: Type.Integer({ default: 10, minimum: 1, maximum: 100, description: 'attempts before a delivery is dead (kept, redelivered by hand)' }),
        backoffBase: Duration('5s', 'delay before the first retry; doubled each attempt, with jitter'),
        backoffMax: Duration('1h', 'longest delay between two attempts'),
        timeout: Duration('10s', 'time limit of one webhook POST'),
        lease: Duration('60s', 'a delivery claimed by a controller that stopped is sent by another after this; at least twice webhooks.timeout'),
        parallel: Type.Integer({ default: 16, minimum: 1, maximum: 1000, description: 'deliveries this controller sends at once' }),
      },
      { default: {} },
    ),
    events: Type.Object(
      {
        poll: Duration('1s', 'how often the event log is read for new events while a stream (SSE) is open'),
        heartbeat: Duration('15s', 'a comment line sent on an idle event stream so proxies keep it open'),
      },
      { default: {} },
    ),
    deadlines: Type.Object(
      {
        inspecting: Duration('10m', 'power-on to agent hello during inspection'),
        'inspect-wait': Duration('15m', 'agent hello to facts received'),
        deploying: Duration('15m', 'deploy preparation and boot to agent hello'),
        'deploy-wait': Duration('60m', 'least time for the deploy steps and first boot (grows with image size)'),
        wiping: Duration('10m', 'power-on to agent hello during a wipe'),
        'wipe-wait': Duration('6h', 'agent hello to wipe finished'),
        'installer-booting': Duration('10m', 'power-on to agent hello when booting the installer for automation'),
        installer: Duration('4h', 'how long the installer is held for automation before it is given up (installer-failed)'),
        'installer-exiting': Duration('15m', 'leaving the installer: switching the machine to its disk and resetting it'),
        'rescue-booting': Duration('10m', 'power-on to agent hello when booting into rescue'),
        rescue: Duration('24h', 'how long a machine stays in rescue before it is given up (rescue-failed)'),
      },
      { default: {} },
    ),
  },
  { additionalProperties: false },
);

/** The configuration as written (plinth.yaml, PLINTH_* environment, flags), validated, with defaults. */
export type ConfigDocument = Static<typeof ConfigSchema>;

/** The durations of a configuration section, in milliseconds, at the same paths; other keys left out. */
export type Milliseconds<T> = {
  [K in keyof T as T[K] extends DurationText ? K : T[K] extends object ? (keyof Milliseconds<T[K]> extends never ? never : K) : never]: T[K] extends DurationText
    ? number
    : Milliseconds<T[K]>;
};

/** The loaded configuration: as written, plus every duration in milliseconds. */
export type Config = ConfigDocument & { readonly ms: Milliseconds<ConfigDocument> };
export type TransitionalDeadlines = Config['deadlines'];
