import { HealthParamsSchema } from '../protocol/health.js';
import { BOOT_METHODS } from '../core/boot-method.js';
import { Type, type Static, type TSchema } from 'typebox';
import { MACHINE_NAME_PATTERN } from '../core/ids.js';
import { OPERATOR_ACTIONS } from '../lifecycle/states.js';
import { HOLD_KINDS, RUN_KINDS, STATES } from '../core/states.js';
import { EXIT_TARGETS } from '../deploy/holds.js';
import { MainTemplateSchema, SSH_KEY_PATTERN } from '../profiles/deploy-config.js';
import { DeployMethodSchema, KernelArgsSchema, OnSuccessSchema, OsSettingsSchema, RootDeviceHintsSchema, TreeRefSchema, TREE_NAME_PATTERN } from '../protocol/deploy.js';
import { DiskLayoutSchema } from '../protocol/disk-layout.js';
import { MULTICAST_TRANSPORTS, SCRIPT_MAX_BYTES, SCRIPT_NAME_PATTERN } from '../protocol/agent.js';

/**
 * The API's schemas: the same objects validate requests (ajv), shape responses
 * (fast-json-stringify) and generate the OpenAPI document.
 */
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
export const Timestamp = Type.String({ format: 'date-time' });
const Strict = { additionalProperties: false } as const;

/**
 * A string from a fixed list. The schema stays `{ type: 'string', enum }`, so a value of the
 * wrong type is still reported as such, while handlers see the union of the values instead
 * of `string` and need no cast.
 */
export function StringEnum<const T extends readonly string[]>(values: T, options: Parameters<typeof Type.String>[0] = {}) {
  return Type.Unsafe<T[number]>(Type.String({ ...options, enum: [...values] }));
}

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable machine-readable error code' }),
      message: Type.String({ description: 'what is wrong, naming the field or rule' }),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'Error', description: 'Every error response has this shape' },
);

const TagKey = Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9][A-Za-z0-9._/-]*$' });
const TagValue = Type.String({ maxLength: 255 });
/**
 * A tag map. A Record alone becomes `patternProperties`, which lets a key that misses the
 * pattern through with any value (a number or an object then failed in the database with a
 * 500): every key must be a TagKey (`propertyNames`) and nothing else is allowed.
 */
const Tags = <V extends TSchema>(value: V, options: { description?: string } = {}) =>
  Type.Record(TagKey, value, { ...options, additionalProperties: false, propertyNames: TagKey });
export const MachineName = Type.String({ pattern: MACHINE_NAME_PATTERN, maxLength: 63, description: 'hostname label: a-z, 0-9, hyphens' });

export const IdentityInput = Type.Object(
  {
    systemUuid: Type.Optional(Nullable(Type.String({ maxLength: 64 }))),
    serial: Type.Optional(Nullable(Type.String({ maxLength: 128 }))),
    manufacturer: Type.Optional(Nullable(Type.String({ maxLength: 128 }))),
    productName: Type.Optional(Nullable(Type.String({ maxLength: 128 }))),
    assetTag: Type.Optional(Nullable(Type.String({ maxLength: 128 }))),
    macs: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 64 })),
  },
  Strict,
);

const ProviderRef = Type.Object(
  {
    applianceId: Type.Optional(Nullable(Type.String({ maxLength: 64 }))),
    ref: Type.Optional(Nullable(Type.String({ maxLength: 512 }))),
  },
  Strict,
);

const BootAddressInput = Type.String({
  maxLength: 64,
  description:
    "fixed IPv4 address of the machine, unique: Plinth's DHCP server (dhcp.mode full) gives it to its MACs, in dhcp.range's subnet; a virtual-media ISO carries it where no DHCP answers (vmedia.network)",
});
const BootMethodInput = Nullable(Type.Enum(BOOT_METHODS, { description: "pxe, http or vmedia; null: its appliance's" }));

export const MachineCreate = Type.Object(
  {
    name: Type.Optional(MachineName),
    identity: Type.Optional(IdentityInput),
    tags: Type.Optional(Tags(TagValue)),
    owner: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 128 }))),
    maintenance: Type.Optional(Type.Boolean()),
    maintenanceReason: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))),
    protected: Type.Optional(Type.Boolean()),
    provider: Type.Optional(ProviderRef),
    bootMethod: Type.Optional(BootMethodInput),
    bootAddress: Type.Optional(Nullable(BootAddressInput)),
  },
  { ...Strict, description: 'A machine to enroll' },
);
export type MachineCreateBody = Static<typeof MachineCreate>;

/** The most machines one bulk enrolment takes (a few racks; about 400 KiB of JSON, under the default body limit). */
export const BULK_ENROL_MAX = 1000;
export const MachineBulkCreate = Type.Object(
  { machines: Type.Array(MachineCreate, { minItems: 1, maxItems: BULK_ENROL_MAX, description: 'enrolled in one transaction, all or none' }) },
  { ...Strict, description: 'Machines to enroll at once' },
);
export type MachineBulkCreateBody = Static<typeof MachineBulkCreate>;

export const MachineImportBody = Type.Object(
  {
    document: Type.Unknown({ description: "Plinth's machines document ({machines: [...]}) or TripleO's nodes.json / instackenv.json ({nodes: [...]}), parsed; checked field by field (docs/inventory-sources.md)" }),
    dryRun: Type.Optional(Type.Boolean({ description: 'give the plan, change nothing' })),
  },
  Strict,
);
export type MachineImportRequest = Static<typeof MachineImportBody>;

const ImportAction = Type.Union([Type.Literal('create'), Type.Literal('update'), Type.Literal('unchanged')]);
export const MachineImportResult = Type.Object({
  format: Type.Union([Type.Literal('plinth'), Type.Literal('tripleo'), Type.Literal('netbox')]),
  dryRun: Type.Boolean(),
  created: Type.Integer(),
  updated: Type.Integer(),
  unchanged: Type.Integer(),
  items: Type.Array(
    Type.Object({
      entry: Type.String({ description: 'machines[3], nodes[3]' }),
      machine: Nullable(Type.String({ description: 'null: a machine to create, named at import' })),
      action: ImportAction,
      changes: Type.Array(Type.String(), { description: 'the fields an update changes' }),
      appliance: Nullable(Type.Object({ name: Type.String(), action: ImportAction, changes: Type.Array(Type.String()) })),
    }),
  ),
});

export const MachinePatch = Type.Object(
  {
    name: Type.Optional(MachineName),
    identity: Type.Optional(IdentityInput),
    tags: Type.Optional(Tags(Nullable(TagValue), { description: 'merged; null removes a key' })),
    owner: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 128 }))),
    maintenance: Type.Optional(Type.Boolean()),
    maintenanceReason: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))),
    protected: Type.Optional(Type.Boolean()),
    provider: Type.Optional(ProviderRef),
    bootMethod: Type.Optional(BootMethodInput),
    bootAddress: Type.Optional(Nullable(BootAddressInput)),
  },
  { ...Strict, minProperties: 1 },
);
export type MachinePatchBody = Static<typeof MachinePatch>;

const Identity = Type.Object({
  systemUuid: Nullable(Type.String()),
  serial: Nullable(Type.String()),
  manufacturer: Nullable(Type.String()),
  productName: Nullable(Type.String()),
  assetTag: Nullable(Type.String()),
  macs: Type.Array(Type.String()),
});

const LastError = Type.Object({ code: Type.String(), stage: Type.String(), message: Type.String(), at: Timestamp });

const Conflict = Type.Object({
  field: Type.String(),
  kind: Type.String(),
  reported: Type.String(),
  machineId: Type.String(),
  recorded: Type.Optional(Type.String()),
});

export const MachineSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    identity: Identity,
    facts: Type.Unknown({ description: 'hardware facts reported by the agent (see docs/facts.md), or null' }),
    state: Type.String({ enum: [...STATES] }),
    targetState: Nullable(Type.String()),
    stateDeadline: Nullable(Timestamp),
    stateEnteredAt: Timestamp,
    lastStage: Nullable(Type.String()),
    power: Type.Object({
      state: Type.String({ enum: ['on', 'off', 'unknown'] }),
      readAt: Nullable(Timestamp),
      source: Nullable(Type.String()),
      expected: Nullable(Type.String({ enum: ['on', 'off'] })),
      drift: Type.Boolean({ description: 'the last reading disagreed with what the lifecycle expects' }),
    }),
    maintenance: Type.Boolean(),
    maintenanceReason: Nullable(Type.String()),
    protected: Type.Boolean(),
    owner: Nullable(Type.String()),
    allocatedAt: Nullable(Timestamp),
    tags: Type.Record(Type.String(), Type.String()),
    provider: Type.Object({ applianceId: Nullable(Type.String()), ref: Nullable(Type.String()) }),
    bootMethod: Nullable(Type.Enum(BOOT_METHODS, { description: "how the lifecycle boots it into the installer; null: its appliance's" })),
    lastError: Nullable(LastError),
    identityConflicts: Type.Array(Conflict),
    currentRunId: Nullable(Type.String()),
    match: Nullable(
      Type.Object(
        {
          profile: Nullable(Type.String()),
          vars: Type.Record(Type.String(), Type.Unknown()),
          poolEntry: Nullable(Type.Object({ pool: Type.String(), id: Type.String(), position: Type.Integer() })),
          matchedAt: Nullable(Timestamp),
          error: Nullable(Type.String({ description: "why no profile was given (eDeploy's message)" })),
        },
        { description: 'the profile, variables and pool entry matching gave it (docs/matching.md); null until matched' },
      ),
    ),
    deployment: Type.Object({
      image: Nullable(Type.String()),
      address: Nullable(Type.String({ description: 'where to reach the installed OS (SSH)' })),
      deployedAt: Nullable(Timestamp),
      hostKeys: Type.Array(Type.String(), { description: "the installed OS's SSH host keys, as given when leaving the installer for it (pin them; empty when not known)" }),
      role: Nullable(Type.String({ description: "tree deploys: the role the installed system runs (eDeploy's ROLE)" })),
      version: Nullable(Type.String({ description: "tree deploys: the role's version the installed system runs (eDeploy's VERS)" })),
    }),
    bootAddress: Nullable(Type.String({ description: "the fixed IPv4 address Plinth's DHCP server gives this machine's MACs (dhcp.mode full)" })),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    version: Type.Integer(),
    allowedActions: Type.Array(Type.String(), { description: 'operator actions possible in the current state' }),
  },
  { $id: 'Machine' },
);

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Nullable(Type.String({ description: 'pass as ?cursor= for the next page' })) });

export const Limit = Type.Integer({ minimum: 1, maximum: 1000, default: 100 });

/** The filter of machine lists and counts. */
const MachineFilterFields = {
  state: Type.Optional(Type.Array(Type.String({ enum: [...STATES] }), { description: 'repeatable; any of' })),
  tag: Type.Optional(Type.Array(Type.String({ pattern: '^[^=]+(=.*)?$' }), { description: 'key=value or key; repeatable; all of' })),
  owner: Type.Optional(Type.String()),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'substring of name, serial, asset tag, UUID or MAC' })),
  maintenance: Type.Optional(Type.Boolean()),
  power: Type.Optional(Type.String({ enum: ['on', 'off', 'unknown'], description: 'the last power reading' })),
  profile: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'the name of the profile matching gave the machine' })),
  role: Type.Optional(Type.String({ pattern: TREE_NAME_PATTERN, description: "tree deploys: the role the installed system runs (deployment.role)" })),
  version: Type.Optional(Type.String({ pattern: TREE_NAME_PATTERN, description: "tree deploys: the version the installed system runs, as it last reported (deployment.version)" })),
};

export const MachineCountsQuery = Type.Object(MachineFilterFields, Strict);
export type MachineCountsQueryType = Static<typeof MachineCountsQuery>;

export const MachineCounts = Type.Object({
  total: Type.Integer({ description: 'machines the filter matches' }),
  byState: Type.Record(Type.String(), Type.Integer(), { description: 'machines the filter matches in each provision state (states with none left out)' }),
});

export const MachineListQuery = Type.Object(
  {
    ...MachineFilterFields,
    include: Type.Optional(Type.Array(Type.String({ enum: ['facts'] }), { description: 'include=facts adds each machine\'s facts (left out by default)' })),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Type.String({ maxLength: 512 })),
  },
  Strict,
);

const SizeInput = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ minLength: 1, maxLength: 32 })], {
  description: 'bytes, or a size with a binary unit: 8G, 16GiB, 512M',
});

export const AllocateBody = Type.Object(
  {
    owner: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'who will hold the machines (default: the token\'s name)' })),
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 1, description: 'how many machines: all of them or none' })),
    cpus: Type.Optional(Type.Integer({ minimum: 1, description: 'at least this many logical CPUs' })),
    memory: Type.Optional(SizeInput),
    disk: Type.Optional(SizeInput),
    arch: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'x86_64, aarch64 (amd64 and arm64 are read as those)' })),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256, pattern: '^[^=]+(=.*)?$' }), { maxItems: 64, description: 'key or key=value; all must match' })),
    profile: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'only machines matched to this profile' })),
    reason: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { ...Strict, description: 'Constraints of an allocation; sizes and counts are minimums against the inspected facts' },
);
export type AllocateBodyType = Static<typeof AllocateBody>;

export const MachineParams = Type.Object({ machine: Type.String({ description: 'machine id or name' }) }, Strict);

export const ActionParams = Type.Object(
  { machine: Type.String({ description: 'machine id or name' }), action: StringEnum(OPERATOR_ACTIONS) },
  Strict,
);

export { RootDeviceHintsSchema } from '../protocol/deploy.js';

export const ActionBody = Type.Object(
  {
    reason: Type.Optional(Type.String({ maxLength: 1024 })),
    wipe: Type.Optional(StringEnum(['none', 'quick', 'full'], { description: 'release and wipe: how to erase the disks' })),
    image: Type.Optional(Type.String({ maxLength: 100, description: 'deploy: image-store name (default: the profile\'s, else deploy.defaultImage)' })),
    imageUrl: Type.Optional(Type.String({ maxLength: 2048, pattern: '^https?://', description: 'deploy: fetch the image from this mirror instead' })),
    method: Type.Optional(DeployMethodSchema),
    sshKeys: Type.Optional(
      Type.Array(Type.String({ minLength: 16, maxLength: 16384, pattern: SSH_KEY_PATTERN }), {
        maxItems: 100,
        description: 'deploy: keys for the installed OS; boot-installer and rescue: the keys the installer\'s SSH server lets in',
      }),
    ),
    console: Type.Optional(
      Type.Boolean({ description: "boot-installer: show the installer's console menu, which may install an image on this machine (its SSH server then needs no keys; docs/console.md)" }),
    ),
    to: Type.Optional(StringEnum(EXIT_TARGETS, { description: 'exit-installer: boot the installed OS (deployed) or go back to the state before (previous, the default)' })),
    hostKeys: Type.Optional(
      Type.Array(Type.String({ minLength: 16, maxLength: 16384, pattern: SSH_KEY_PATTERN }), {
        minItems: 1,
        maxItems: 8,
        description: "exit-installer to deployed: the installed OS's SSH host public keys, as the automation that installed it wrote them (served with the machine, for clients to pin)",
      }),
    ),
    rootDeviceHints: Type.Optional(RootDeviceHintsSchema),
    reuseRun: Type.Optional(Type.String({ maxLength: 64, description: 'deploy again with this run\'s artifacts, byte for byte' })),
    installer: Type.Optional(Type.Object({ kernel: Type.Optional(Type.String({ maxLength: 2048 })), initrd: Type.Optional(Type.String({ maxLength: 2048 })) }, Strict)),
    os: Type.Optional(OsSettingsSchema),
    kernelArgs: Type.Optional(KernelArgsSchema),
    template: Type.Optional(MainTemplateSchema),
    multicast: Type.Optional(
      Type.Object(
        {
          transport: Type.Optional(StringEnum(MULTICAST_TRANSPORTS, { description: 'udpcast (the default) or uftp (encrypted; crosses routers with ttl)' })),
          rate: Type.Optional(Type.String({ maxLength: 16, pattern: '^[0-9]+(\\.[0-9]+)?[kKmMgG]?$', description: 'rate cap in bits per second: 200M (the default), 1G, 50M' })),
          minReceivers: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'start once this many machines joined (default 2)' })),
          maxWaitSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: 'or this long after the first joined (default 60)' })),
          ttl: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'uftp: multicast time-to-live, one more than the routers to cross (default 1)' })),
        },
        { ...Strict, description: 'deploy: receive the image in a multicast session (udpcast or uftp) with the other machines deploying it; HTTP is the fallback' },
      ),
    ),
    differential: Type.Optional(
      Type.Boolean({
        description:
          "deploy: read the machine's disk first and fetch only the image's chunks it does not hold (default: true for a redeploy of the image the machine runs, else false)",
      }),
    ),
    tree: Type.Optional(TreeRefSchema),
    diskLayout: Type.Optional(DiskLayoutSchema),
    onSuccess: Type.Optional(OnSuccessSchema),
    scripts: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ pattern: SCRIPT_NAME_PATTERN }),
            content: Type.String({ minLength: 3, maxLength: SCRIPT_MAX_BYTES, pattern: '^#!', description: 'the program, starting with #!' }),
            timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400, description: 'default 3600' })),
          },
          Strict,
        ),
        { minItems: 1, maxItems: 64, description: 'inspect: run these scripts on the machine (instead of the library\'s inspection scripts), in order, before the facts; deploy, redeploy, retry (image and tree deploys): the configure step, run in the installer before the disks are touched' },
      ),
    ),
    /** inspect: a health check (docs/health.md): sysbench cpu and memory, fio reads of the disks. */
    health: Type.Optional(HealthParamsSchema),
  },
  Strict,
);
export type ActionBodyType = Static<typeof ActionBody>;

export const InstallerAccessSchema = Type.Object(
  {
    machine: Type.String(),
    uuid: Nullable(Type.String()),
    state: Type.String(),
    run: Type.String(),
    kind: Type.String({ enum: [...HOLD_KINDS] }),
    user: Type.Literal('root'),
    address: Nullable(Type.String({ description: 'where a client reaches the installer; null until its SSH server reported in' })),
    port: Nullable(Type.Integer()),
    hostKeys: Type.Array(Type.String(), { description: 'the SSH host keys the installer generated at this boot' }),
    knownHosts: Type.Array(Type.String(), { description: 'known_hosts lines pinning those keys at that address and port' }),
    reportedAt: Nullable(Timestamp),
  },
  Strict,
);

export const EventSchema = Type.Object({
  id: Type.Integer(),
  machineId: Type.String(),
  at: Timestamp,
  actor: Type.String(),
  action: Type.String(),
  fromState: Nullable(Type.String()),
  toState: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  details: Type.Unknown(),
});

/** One entry of the event log (GET /api/v1/events, the SSE stream, webhook payloads' `data`). */
export const LogEventSchema = Type.Object({
  seq: Type.Integer({ description: 'the cursor: grows with every event, in commit order' }),
  type: Type.String({ description: 'machine.transition, machine.<action>, power.<action>, appliance.<action>, run.<status>, run.step, image.<action>, security.<action>' }),
  at: Timestamp,
  machineId: Nullable(Type.String()),
  applianceId: Nullable(Type.String()),
  actor: Type.String(),
  action: Type.String(),
  fromState: Nullable(Type.String()),
  toState: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  details: Nullable(Type.Record(Type.String(), Type.Unknown())),
});

export const EventQuery = Type.Object(
  {
    after: Type.Optional(Type.Integer({ minimum: 0, description: 'events after this seq (0: from the first)' })),
    machine: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'only this machine (name or id)' })),
    type: Type.Optional(Type.String({ maxLength: 1024, description: 'comma-separated type prefixes, e.g. machine.transition,power.' })),
  },
  Strict,
);

export const RunStep = Type.Object({
  name: Type.String(),
  status: Type.String(),
  startedAt: Nullable(Timestamp),
  finishedAt: Nullable(Timestamp),
  message: Nullable(Type.String()),
});

export const RunSchema = Type.Object(
  {
    id: Type.String(),
    machineId: Type.String(),
    kind: Type.String({ enum: [...RUN_KINDS] }),
    status: Type.String({ enum: ['pending', 'running', 'succeeded', 'failed', 'aborted'] }),
    steps: Type.Array(RunStep),
    params: Type.Unknown(),
    error: Type.Unknown(),
    reusedFrom: Nullable(Type.String()),
    createdBy: Type.String(),
    createdAt: Timestamp,
    startedAt: Nullable(Timestamp),
    finishedAt: Nullable(Timestamp),
  },
  { $id: 'Run' },
);

export const ActionResult = Type.Object({ machine: MachineSchema, run: Nullable(RunSchema) });

export const PageQuery = Type.Object({ limit: Type.Optional(Limit), cursor: Type.Optional(Type.String({ maxLength: 512 })) }, Strict);

export const RunLogLine = Type.Object({ id: Type.Integer(), at: Timestamp, stream: Type.String(), line: Type.String() });

export const ArtifactSchema = Type.Object({
  name: Type.String(),
  contentType: Type.String(),
  sha256: Type.String(),
  size: Type.Integer(),
  createdAt: Timestamp,
});

export const TokenSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Type.String({ enum: ['reader', 'operator', 'admin'] }),
  createdAt: Timestamp,
  createdBy: Nullable(Type.String()),
  lastUsedAt: Nullable(Timestamp),
  expiresAt: Nullable(Timestamp),
  revokedAt: Nullable(Timestamp),
});

export const TokenCreate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }),
    role: Type.String({ enum: ['reader', 'operator', 'admin'] }),
    expiresAt: Type.Optional(Nullable(Timestamp)),
  },
  Strict,
);
export type TokenCreateBody = Static<typeof TokenCreate>;

export const BootAttemptSchema = Type.Object({
  id: Type.String(),
  startedAt: Timestamp,
  runId: Nullable(Type.String()),
  decision: Type.String({ description: 'what the boot service told the machine: installer, local, installer-missing, …' }),
  remoteAddr: Nullable(Type.String()),
  platform: Nullable(Type.String()),
  arch: Nullable(Type.String()),
  bootMac: Nullable(Type.String()),
  stages: Type.Array(
    Type.Object({ id: Type.Integer(), at: Timestamp, stage: Type.String(), runId: Nullable(Type.String()), detail: Type.Unknown() }),
  ),
});

export const ApplianceSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    type: Type.String({ enum: ['redfish', 'ipmi', 'libvirt', 'proxmox', 'vsphere', 'qemu', 'manual'] }),
    address: Type.String(),
    username: Nullable(Type.String()),
    hasPassword: Type.Boolean({ description: 'a password is stored (encrypted); it is never returned' }),
    insecure: Type.Boolean(),
    caCert: Nullable(Type.String()),
    options: Type.Record(Type.String(), Type.Unknown()),
    site: Nullable(Type.String()),
    bootMethod: Type.Enum(BOOT_METHODS, { description: 'how the lifecycle boots its machines into the installer (a machine may override it)' }),
    health: Type.String({ enum: ['unknown', 'ok', 'auth', 'unreachable', 'error'], description: 'what the last provider calls said: ok, auth (credentials refused), unreachable, error, unknown (not yet, or settings changed since)' }),
    healthError: Nullable(Type.String({ description: "the provider's message for the failure that set health" })),
    healthAt: Nullable(Timestamp),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'Appliance' },
);

const ApplianceFields = {
  address: Type.String({ minLength: 1, maxLength: 1024 }),
  username: Nullable(Type.String({ maxLength: 256 })),
  password: Nullable(Type.String({ maxLength: 4096, description: 'stored encrypted, never returned' })),
  insecure: Type.Boolean({ description: 'skip TLS verification (explicit opt-out)' }),
  caCert: Nullable(Type.String({ maxLength: 65536, description: 'PEM CA bundle for this appliance' })),
  options: Type.Record(Type.String(), Type.Unknown()),
  site: Nullable(Type.String({ maxLength: 63, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', description: 'remote site whose manager runs it' })),
  bootMethod: Type.Enum(BOOT_METHODS, { description: 'pxe (default), http (UEFI HTTP boot) or vmedia (the installer ISO through the BMC)' }),
};

/** An appliance's new settings (a rotated password, a new address or certificate); name and type stay. */
export const AppliancePatch = Type.Object(
  {
    address: Type.Optional(ApplianceFields.address),
    username: Type.Optional(ApplianceFields.username),
    password: Type.Optional(ApplianceFields.password),
    insecure: Type.Optional(ApplianceFields.insecure),
    caCert: Type.Optional(ApplianceFields.caCert),
    options: Type.Optional(ApplianceFields.options),
    site: Type.Optional(ApplianceFields.site),
    bootMethod: Type.Optional(ApplianceFields.bootMethod),
  },
  { additionalProperties: false },
);

export const ApplianceMoveResult = Type.Object({
  from: Type.String(),
  to: Type.String(),
  machines: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), ref: Nullable(Type.String()) })),
});

export const ApplianceEventSchema = Type.Object({
  id: Type.Integer(),
  at: Timestamp,
  actor: Type.String(),
  action: Type.String(),
  reason: Nullable(Type.String()),
  details: Nullable(Type.Record(Type.String(), Type.Unknown())),
});

export const ApplianceMoveBody = Type.Object(
  {
    to: Type.String({ minLength: 1, maxLength: 63, description: 'the appliance (name or id) the machines move to' }),
    machines: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { maxItems: 10000, description: 'names or ids; all machines of the appliance when left out' })),
    ref: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: "the machine's reference on the new appliance (one machine only); otherwise each keeps its own" })),
  },
  { additionalProperties: false },
);

export const ApplianceCreate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }),
    type: Type.String({ enum: ['redfish', 'ipmi', 'libvirt', 'proxmox', 'vsphere', 'qemu', 'manual'] }),
    address: ApplianceFields.address,
    username: Type.Optional(ApplianceFields.username),
    password: Type.Optional(ApplianceFields.password),
    insecure: Type.Optional(ApplianceFields.insecure),
    caCert: Type.Optional(ApplianceFields.caCert),
    options: Type.Optional(ApplianceFields.options),
    site: Type.Optional(ApplianceFields.site),
    bootMethod: Type.Optional(ApplianceFields.bootMethod),
  },
  { additionalProperties: false },
);

export const JobSchema = Type.Object(
  {
    id: Type.String(),
    applianceId: Type.String(),
    machineId: Nullable(Type.String()),
    runId: Nullable(Type.String()),
    site: Nullable(Type.String()),
    spec: Type.Unknown(),
    status: Type.String({ enum: ['queued', 'running', 'succeeded', 'failed'] }),
    attempts: Type.Integer(),
    deadline: Timestamp,
    result: Type.Unknown(),
    error: Type.Unknown(),
    createdAt: Timestamp,
    finishedAt: Nullable(Timestamp),
  },
  { $id: 'ProviderJob' },
);

/** A webhook as the API shows it (never its secret). */
export const WebhookSchema = Type.Object({ id: Type.String(), url: Type.String(), events: Type.Array(Type.String()), createdAt: Timestamp, createdBy: Nullable(Type.String()) });
/** One event for one webhook. */
export const DeliverySchema = Type.Object({
  id: Type.String({ description: 'the webhook-id header: the same on every attempt' }),
  webhookId: Type.String(),
  eventSeq: Type.Integer(),
  eventType: Type.String(),
  status: Type.Enum(['pending', 'delivering', 'delivered', 'dead']),
  attempts: Type.Integer(),
  nextAttemptAt: Timestamp,
  lastStatus: Nullable(Type.Integer()),
  lastError: Nullable(Type.String()),
  createdAt: Timestamp,
  deliveredAt: Nullable(Timestamp),
});
