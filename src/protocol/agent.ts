import { Type, type Static } from 'typebox';
import { KernelArgsSchema, OnSuccessSchema, RootDeviceHintsSchema, TREE_NAME_PATTERN } from './deploy.js';
import { DiskLayoutSchema } from './disk-layout.js';
import { ChunkIndexRefSchema } from './chunk-index.js';
import { DISK_NAME_PATTERN } from '../core/facts.js';

/**
 * What the controller and the installer's agent say to each other, as schemas both sides
 * check: the controller validates every body the agent sends (and serialises its answers
 * through the same schemas), the agent checks the parameters it is handed before it touches
 * a disk. Every call carries the run's ticket as a bearer token, except `installed`, which
 * the installed OS makes with its deploy's callback secret.
 *
 *   POST /agent/v1/hello         HelloRequest       → HelloResponse (the run and its params)
 *   POST /agent/v1/scripts/{name} ScriptResult      → {}             (inspect runs, before the facts; deploy runs, before the disks)
 *   POST /agent/v1/facts         Facts (facts.ts)   → NextAnswer     (inspect runs)
 *   POST /agent/v1/steps/{name}  StepReport         → StepReportAnswer (deploy and wipe runs)
 *   POST /agent/v1/heartbeat     Heartbeat          → HeartbeatAnswer
 *   POST /agent/v1/log           LogBatch           → LogAnswer
 *   POST /agent/v1/boot-local    {}                 → BootLocalAnswer (deploy, after the last step)
 *   POST /agent/v1/fail          FailReport         → HeartbeatAnswer
 *   POST /agent/v1/ssh           SshReport          → SshAnswer      (installer and rescue runs)
 *   POST /agent/v1/installed     InstalledReport    → InstalledAnswer
 *
 * Deploy steps, in order (runs.ts): image deploys select-disk, write-image, grow-root,
 * configure; tree deploys layout-disks, copy-tree, configure, boot-loader; then boot-local
 * and the reboot (a tree deploy: its ONSUCCESS). Wipe steps: erase; then the power-off (runs.ts). Every step is reported
 * `running` when it starts and `succeeded` or `failed` when it ends, with its duration in
 * `details.durationMs`.
 */
const Strict = { additionalProperties: false } as const;
/** Hex SHA-256, either case (the agent compares it lower-cased). */
export const SHA256_PATTERN = '^[0-9A-Fa-f]{64}$';

/** What the agent does once its run is over; the controller decides. */
export const AGENT_NEXT = ['poweroff', 'reboot', 'wait'] as const;
export type AgentNext = (typeof AGENT_NEXT)[number];
export const AgentNextSchema = Type.Enum(AGENT_NEXT);

export const HelloRequestSchema = Type.Object(
  { agentVersion: Type.String({ maxLength: 64 }), bootMode: Type.Optional(Type.Enum(['uefi', 'bios'])) },
  Strict,
);
export type HelloRequest = Static<typeof HelloRequestSchema>;

/** A script's name: a file name on the machine and a step name (`script-NAME`). */
export const SCRIPT_NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,23}$';
/** The most a script may be (its text). */
export const SCRIPT_MAX_BYTES = 1024 * 1024;
/** An operator's script the agent runs on the machine (discovery, commissioning, tests). */
export const ScriptSchema = Type.Object(
  {
    name: Type.String({ pattern: SCRIPT_NAME_PATTERN }),
    /** The program itself, starting with `#!`. */
    content: Type.String({ minLength: 3, maxLength: SCRIPT_MAX_BYTES, pattern: '^#!' }),
    timeoutSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
  },
  Strict,
);
export type Script = Static<typeof ScriptSchema>;

/**
 * An inspect run: the facts, and before them the scripts to run (in order; the first that
 * fails fails the run), with the machine's variables as their environment and a JSON file.
 */
export const InspectParamsSchema = Type.Object(
  {
    scripts: Type.Optional(Type.Array(ScriptSchema, { maxItems: 64 })),
    variables: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  Strict,
);
export type InspectParams = Static<typeof InspectParamsSchema>;

/** Output kept of a script: its last bytes. */
export const SCRIPT_OUTPUT_MAX = 64 * 1024;
/** A file a script left in `$PLINTH_OUTPUT_DIR`, base64; the most kept of each. */
export const SCRIPT_FILE_MAX = 256 * 1024;
/**
 * A configure script that leaves this file in its output directory computes the tree
 * deploy's disk layout (eDeploy's configure scripts laid out the disks themselves): JSON, in
 * the form of `diskLayout` (protocol/disk-layout.ts), used instead of the profile's.
 */
export const SCRIPT_DISK_LAYOUT_FILE = 'disk-layout.json';
export const ScriptResultSchema = Type.Object(
  {
    /** null when it was killed (timeout or signal). */
    exitCode: Type.Union([Type.Integer({ minimum: 0, maximum: 255 }), Type.Null()]),
    timedOut: Type.Boolean(),
    durationMs: Type.Integer({ minimum: 0 }),
    /** stdout and stderr together, as they came; the last SCRIPT_OUTPUT_MAX characters. */
    output: Type.String({ maxLength: SCRIPT_OUTPUT_MAX }),
    files: Type.Array(
      Type.Object(
        {
          name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$' }),
          sizeBytes: Type.Integer({ minimum: 0 }),
          /** base64 of the first SCRIPT_FILE_MAX bytes. */
          content: Type.String({ maxLength: Math.ceil(SCRIPT_FILE_MAX / 3) * 4 }),
          truncated: Type.Boolean(),
        },
        Strict,
      ),
      { maxItems: 32 },
    ),
  },
  Strict,
);
export type ScriptResult = Static<typeof ScriptResultSchema>;
export const ScriptParamsSchema = Type.Object({ name: Type.String({ pattern: SCRIPT_NAME_PATTERN }) }, Strict);

/** The tools a multicast session can run (docs/mass-deploy.md: which to pick). */
export const MULTICAST_TRANSPORTS = ['udpcast', 'uftp'] as const;
export type MulticastTransport = (typeof MULTICAST_TRANSPORTS)[number];

/** uftp's IDs are 32-bit numbers written as 0x and eight hex digits. */
const UFTP_ID = Type.String({ pattern: '^0x[0-9A-F]{8}$' });

/**
 * Where a deploy's multicast session is. udpcast (the default): the receiver listens on
 * `portbase` (and the port after it), gives up if the transfer has not started after
 * `startTimeoutSeconds` or stalls for `receiveTimeoutSeconds`, and the agent then fetches
 * the rest over HTTP. uftp: uftpd listens on `portbase` for the announce on `uftp.address`
 * (a source-specific multicast address), answers as `uftp.clientId`, and accepts only the
 * server `uftp.serverId` sending from `uftp.serverAddress` with the key of
 * `uftp.fingerprint` (the session's own, made by the controller); it writes the image onto
 * the disk, which the agent then checks against the image's chunk index.
 */
export const MulticastReceiveSchema = Type.Object(
  {
    session: Type.String({ minLength: 1, maxLength: 64 }),
    /** Absent: udpcast (what controllers before uftp sent). */
    transport: Type.Optional(Type.Enum(MULTICAST_TRANSPORTS)),
    portbase: Type.Integer({ minimum: 1024, maximum: 65534 }),
    startTimeoutSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
    receiveTimeoutSeconds: Type.Integer({ minimum: 1, maximum: 3600 }),
    uftp: Type.Optional(
      Type.Object(
        {
          address: Type.String({ pattern: '^232\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}$' }),
          serverId: UFTP_ID,
          serverAddress: Type.String({ minLength: 7, maxLength: 15, pattern: '^[0-9.]+$' }),
          /** SHA-1 of the server's public key as uftp prints it (uftp_keymgt). */
          fingerprint: Type.String({ pattern: '^([0-9A-F]{2}:){19}[0-9A-F]{2}$' }),
          clientId: UFTP_ID,
        },
        Strict,
      ),
    ),
  },
  Strict,
);
export type MulticastReceive = Static<typeof MulticastReceiveSchema>;

/**
 * A tree deploy: the disks laid out as `diskLayout` says, the tree of `role` at `version`
 * copied from Plinth's rsync daemon (on the controller's host at `rsyncPort`, when it runs
 * one) or its `.edeploy` tarball, `/var/lib/edeploy/conf` written (ROLE, VERS, RSERV (the
 * controller's host), RSERV_PORT, PROFILE, PLINTH_URL) with the `edeploy` command
 * (`edeployScript`, put at /usr/local/sbin/edeploy) and the host's credential (`hostToken`,
 * /var/lib/edeploy/token), then `onSuccess`.
 */
export const TreeParamsSchema = Type.Object(
  {
    role: Type.String({ pattern: TREE_NAME_PATTERN }),
    version: Type.String({ pattern: TREE_NAME_PATTERN }),
    rsyncPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_535 })),
    /** Absolute, or relative to the controller URL the agent was booted with. */
    tarballUrl: Type.String({ minLength: 1, maxLength: 2048 }),
    /** The machine's profile (eDeploy's PROFILE); empty without one. */
    profile: Type.String({ maxLength: 128, pattern: '^[A-Za-z0-9._-]*$' }),
    edeployScript: Type.String({ minLength: 3, maxLength: 256 * 1024, pattern: '^#!' }),
    onSuccess: OnSuccessSchema,
    diskLayout: DiskLayoutSchema,
    /** The installed host's credential for reporting its version (protocol/host.ts), written to /var/lib/edeploy/token (0600). */
    hostToken: Type.Optional(Type.String({ minLength: 10, maxLength: 200, pattern: '^plhost_[A-Za-z0-9._-]+$' })),
  },
  Strict,
);
export type TreeParams = Static<typeof TreeParamsSchema>;

/** What a deploy run's agent does: write `image`, or lay out the disks and copy `tree` (exactly one of them). */
export const DeployParamsSchema = Type.Object(
  {
    tree: Type.Optional(TreeParamsSchema),
    image: Type.Optional(Type.Object(
      {
        /** Absolute, or relative to the controller URL the agent was booted with. */
        url: Type.String({ minLength: 1, maxLength: 2048 }),
        /** Hex SHA-256 of the raw image. */
        sha256: Type.String({ pattern: SHA256_PATTERN }),
        sizeBytes: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
        format: Type.Literal('raw'),
        /** The image's chunk index (images the controller serves): zero chunks are not fetched, every chunk is verified. */
        index: Type.Optional(ChunkIndexRefSchema),
        /** The disk may hold an earlier version of this image: chunks it already holds are read and kept, not fetched. Needs `index`. */
        differential: Type.Optional(Type.Boolean()),
      },
      Strict,
    )),
    rootDeviceHints: Type.Optional(RootDeviceHintsSchema),
    /**
     * keep-partitions (a console install of a partition image): the image goes into this
     * partition of the chosen disk (its file system grown to the partition, the seed written
     * into it); the partition table and every other partition are left as they are.
     */
    partition: Type.Optional(Type.String({ pattern: DISK_NAME_PATTERN })),
    /** cloud-init NoCloud seed: the documents as they are to be written (text, not objects). */
    seed: Type.Object({ userData: Type.String(), metaData: Type.String(), networkConfig: Type.String() }, Strict),
    /** Added to the installed system's boot loader configuration (GRUB, BLS entries) when the seed is written. */
    kernelArgs: Type.Optional(KernelArgsSchema),
    /** A multicast session to receive the image from first (HTTP `image.url` completes or repairs it). */
    multicast: Type.Optional(MulticastReceiveSchema),
    /**
     * The configure step: operator scripts run before any disk is touched, in order, with the
     * machine's variables (as inspect runs give them); the first that fails fails the deploy.
     */
    scripts: Type.Optional(Type.Array(ScriptSchema, { maxItems: 64 })),
    variables: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  Strict,
);
export type DeployParams = Static<typeof DeployParamsSchema>;

export const WIPE_MODES = ['quick', 'full'] as const;
export const WipeParamsSchema = Type.Object({ mode: Type.Enum(WIPE_MODES) }, Strict);
export type WipeParams = Static<typeof WipeParamsSchema>;

/** One OpenSSH public key line (`type base64 [comment]`). */
export const SSH_PUBLIC_KEY_PATTERN = '^(ssh|ecdsa|sk)-[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+( .*)?$';
export const SshPublicKeySchema = Type.String({ minLength: 16, maxLength: 16_384, pattern: SSH_PUBLIC_KEY_PATTERN });

/**
 * An installer or rescue run: the agent starts an SSH server that accepts only these keys
 * (the run's own, handed over here and nowhere else), reports its host keys, and waits.
 */
export const HoldParamsSchema = Type.Object(
  {
    /** None only in a console hold: the menu, and no SSH server. */
    authorizedKeys: Type.Array(SshPublicKeySchema, { maxItems: 100 }),
    /** The operator enabled the console menu for this hold (`plinth machine console`): it may install an image (docs/console.md). */
    console: Type.Optional(Type.Literal(true)),
  },
  Strict,
);
export type HoldParams = Static<typeof HoldParamsSchema>;

/** The console menu's layouts: the image over the whole disk, or the disk's partitions kept (docs/console.md). */
export const CONSOLE_LAYOUTS = ['whole-disk', 'keep-partitions'] as const;
export type ConsoleLayout = (typeof CONSOLE_LAYOUTS)[number];

/** An image (and its version: the store's bytes under that name) the console may install. */
export const ConsoleImageSchema = Type.Object(
  {
    name: Type.String(),
    sha256: Type.String({ pattern: SHA256_PATTERN }),
    sizeBytes: Type.Integer({ minimum: 0 }),
    createdAt: Type.String(),
    /** A whole disk (its partition table and partitions: whole-disk), or one file system (a partition image: keep-partitions). */
    wholeDisk: Type.Boolean(),
    /** A multicast session of this image that is waiting for receivers: joining it receives the image with the others. */
    multicast: Type.Union([Type.Null(), Type.Object({ session: Type.String(), receivers: Type.Integer(), minReceivers: Type.Integer() }, Strict)]),
  },
  Strict,
);
/** GET /agent/v1/console/images: what a console hold may install. */
export const ConsoleImagesAnswerSchema = Type.Object({ images: Type.Array(ConsoleImageSchema) }, Strict);
export type ConsoleImagesAnswer = Static<typeof ConsoleImagesAnswerSchema>;

/** POST /agent/v1/console/install: the choices made on the console. */
export const ConsoleInstallSchema = Type.Object(
  {
    image: Type.String({ minLength: 1, maxLength: 100 }),
    /** The target disk by its kernel name, as the installer's inspection lists it (`vda`, `nvme0n1`). */
    disk: Type.String({ pattern: DISK_NAME_PATTERN }),
    layout: Type.Enum(CONSOLE_LAYOUTS),
    /** keep-partitions: the partition the image goes into (`vda2`). */
    partition: Type.Optional(Type.String({ pattern: DISK_NAME_PATTERN })),
    /** keep-partitions: that partition's size as the installer sees it now (the controller's inspection lists disks, not partitions). */
    partitionSizeBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
    /** Join the image's waiting multicast session instead of fetching it alone over HTTP. */
    multicast: Type.Optional(Type.Boolean()),
  },
  Strict,
);
export type ConsoleInstall = Static<typeof ConsoleInstallSchema>;
/** The deploy run the console's choices started, and the ticket its agent works with (already claimed for it). */
export const ConsoleInstallAnswerSchema = Type.Object({ run: Type.String(), token: Type.String() }, Strict);
export type ConsoleInstallAnswer = Static<typeof ConsoleInstallAnswerSchema>;

/** POST /agent/v1/console/power: reboot or power off chosen on the console, reported before the agent does it. */
export const CONSOLE_POWER_ACTIONS = ['reboot', 'poweroff'] as const;
export const ConsolePowerSchema = Type.Object({ action: Type.Enum(CONSOLE_POWER_ACTIONS) }, Strict);
export type ConsolePower = Static<typeof ConsolePowerSchema>;

const Run = <K extends string, P extends typeof InspectParamsSchema | typeof DeployParamsSchema | typeof WipeParamsSchema | typeof HoldParamsSchema>(kind: K, params: P) =>
  Type.Object({ id: Type.String(), kind: Type.Literal(kind), params }, Strict);
/** The run the agent is to do, with the parameters of its kind. */
export const AgentRunSchema = Type.Union([
  Run('inspect', InspectParamsSchema),
  Run('deploy', DeployParamsSchema),
  Run('wipe', WipeParamsSchema),
  Run('installer', HoldParamsSchema),
  Run('rescue', HoldParamsSchema),
]);
export type AgentRun = Static<typeof AgentRunSchema>;

export const HelloResponseSchema = Type.Object(
  { machine: Type.Object({ id: Type.String(), name: Type.String() }, Strict), run: AgentRunSchema, heartbeatSeconds: Type.Integer({ minimum: 1 }) },
  Strict,
);
export type HelloResponse = Static<typeof HelloResponseSchema>;

export const STEP_STATUSES = ['running', 'succeeded', 'failed'] as const;
export type StepReportStatus = (typeof STEP_STATUSES)[number];
/** A step's name in the URL: any lower-case word (the controller records unknown ones as they come). */
export const StepParamsSchema = Type.Object({ name: Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$' }) }, Strict);
/** Body of POST /agent/v1/steps/{name}. */
export const StepReportSchema = Type.Object(
  {
    status: Type.Enum(STEP_STATUSES),
    /** One line for people: what was done, or why it failed. */
    message: Type.Optional(Type.String({ maxLength: 4096 })),
    /** Machine-readable: durationMs, what the step chose or measured; on failure `code`. */
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  Strict,
);
export type StepReport = Static<typeof StepReportSchema>;

/**
 * Answer to a step report. `next` is present only when that report ended the run's last
 * step (a wipe's `erase`): the run is over and the agent ends as told. Absent: carry on
 * (and after a wipe's last step, power off).
 */
export const StepReportAnswerSchema = Type.Object({ next: Type.Optional(AgentNextSchema) });
export type StepReportAnswer = Static<typeof StepReportAnswerSchema>;

/** How far an image write is; the deploy's deadline follows it (within a bound). */
export const ProgressSchema = Type.Object(
  {
    bytesWritten: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    totalBytes: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    bytesPerSecond: Type.Number({ minimum: 0, maximum: 1e12 }),
  },
  Strict,
);
export type Progress = Static<typeof ProgressSchema>;

export const HeartbeatSchema = Type.Object({ step: Type.Optional(Type.String({ maxLength: 64 })), progress: Type.Optional(ProgressSchema) }, Strict);
export type Heartbeat = Static<typeof HeartbeatSchema>;
export const HeartbeatAnswerSchema = Type.Object({ next: AgentNextSchema });

export const LogLineSchema = Type.Object(
  { at: Type.Optional(Type.String({ format: 'date-time' })), stream: Type.Optional(Type.String({ maxLength: 32 })), line: Type.String({ maxLength: 16_384 }) },
  Strict,
);
export type LogLine = Static<typeof LogLineSchema>;
export const LogBatchSchema = Type.Object({ lines: Type.Array(LogLineSchema, { maxItems: 2000 }) }, Strict);
export type LogBatch = Static<typeof LogBatchSchema>;
export const LogAnswerSchema = Type.Object({ stored: Type.Integer() });

/** Answer to facts: the run is over. */
export const NextAnswerSchema = Type.Object({ next: AgentNextSchema });
export type NextAnswer = Static<typeof NextAnswerSchema>;

export const BootLocalRequestSchema = Type.Object({}, Strict);
/** Answer to POST /agent/v1/boot-local: the machine boots from its disk from now on. Absent `next`: reboot. */
export const BootLocalAnswerSchema = Type.Object({ next: Type.Optional(Type.Literal('reboot')) });
export type BootLocalAnswer = Static<typeof BootLocalAnswerSchema>;

/** The agent gives up; `stage` is the step that failed. */
export const FailReportSchema = Type.Object(
  { code: Type.String({ maxLength: 32 }), message: Type.String({ maxLength: 4096 }), stage: Type.Optional(Type.String({ maxLength: 64 })) },
  Strict,
);
export type FailReport = Static<typeof FailReportSchema>;

/**
 * The installer's SSH server is up: the port it listens on, its host keys (generated at this
 * boot), and the addresses the installer has. Clients pin the host keys (known_hosts).
 */
export const SshReportSchema = Type.Object(
  {
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    hostKeys: Type.Array(SshPublicKeySchema, { minItems: 1, maxItems: 8 }),
    addresses: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
  },
  Strict,
);
export type SshReport = Static<typeof SshReportSchema>;
export const SshAnswerSchema = Type.Object({ next: AgentNextSchema });

/** The installed OS (or a native installer's last step) reports in with its deploy's callback secret. */
export const InstalledReportSchema = Type.Object(
  { event: Type.Enum(['installed', 'first-boot']), source: Type.Optional(Type.String({ maxLength: 64 })) },
  Strict,
);
export type InstalledReport = Static<typeof InstalledReportSchema>;
export const InstalledAnswerSchema = Type.Object({ machine: Type.String(), state: Type.String() });

/**
 * `GET /boot/agent-ticket?uuid=…&serial=…&mac0=…` (the identity parameters of a network boot):
 * how an installer booted from the ISO, which carries the controller URL but no run, gets its
 * run's ticket. `ticket`: use it as a network-booted agent uses `plinth.token`; `wait`: ask
 * again after `retryAfterSeconds`; `none`: this machine has nothing to run in the installer.
 */
export const AgentTicketAnswerSchema = Type.Union([
  Type.Object({ decision: Type.Literal('ticket'), machine: Type.String(), runId: Type.String(), token: Type.String() }, Strict),
  Type.Object({ decision: Type.Literal('wait'), retryAfterSeconds: Type.Integer({ minimum: 1 }), why: Type.String() }, Strict),
  Type.Object({ decision: Type.Literal('none'), why: Type.String() }, Strict),
]);
export type AgentTicketAnswer = Static<typeof AgentTicketAnswerSchema>;
