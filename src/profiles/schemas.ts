import { Type, type Static, type TSchema } from 'typebox';
import { DeployConfigSchema } from './deploy-config.js';

/**
 * The shapes of profiles and pools on the API: the same objects validate requests, shape
 * responses and document the API. Checks a schema cannot say well (a spec line's four
 * values, a quota that is a count or `unlimited`) are made by documents.ts, which names the
 * field the same way.
 */
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Timestamp = Type.String({ format: 'date-time' });
const Strict = { additionalProperties: false } as const;

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$';
export const ProfileName = Type.String({ minLength: 1, maxLength: 63, pattern: NAME_PATTERN, description: 'letters, digits, dot, underscore, hyphen' });
export const PoolName = Type.String({ minLength: 1, maxLength: 63, pattern: NAME_PATTERN });

/** The most entries a pool may have (eDeploy models such as `10.0.0-255.1-254` stay well under it). */
export const MAX_POOL_ENTRIES = 100_000;
export const MAX_SPEC_LINES = 10_000;

export const ProfileInput = Type.Object(
  {
    name: ProfileName,
    position: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'order of trial, lowest first (default: kept, or after the last profile)' })),
    description: Type.Optional(Nullable(Type.String({ maxLength: 4096 }))),
    spec: Type.Optional(Type.Array(Type.Unknown(), { maxItems: MAX_SPEC_LINES, description: 'eDeploy spec lines, each [class, id, key, value]' })),
    specText: Type.Optional(Type.String({ maxLength: 4_000_000, description: 'the spec as an eDeploy .specs file (Python literal, parsed, never evaluated)' })),
    quota: Type.Optional(Type.Unknown({ description: "how many machines may hold this profile (a count), or 'unlimited' (default)" })),
    pool: Type.Optional(Nullable(PoolName)),
    releaseReturnsEntry: Type.Optional(Type.Boolean({ description: 'release gives the pool entry back (default false: it stays reserved for the machine)' })),
    deploy: Type.Optional(DeployConfigSchema),
  },
  { ...Strict, description: 'A profile: a spec, a quota, an optional pool and a deploy configuration' },
);
export type ProfileInputBody = Static<typeof ProfileInput>;

export const PoolInput = Type.Object(
  {
    name: PoolName,
    description: Type.Optional(Nullable(Type.String({ maxLength: 4096 }))),
    entries: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown()), { maxItems: MAX_POOL_ENTRIES, description: 'the entries, in order' })),
    generate: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "an eDeploy generate() model ('host01-10', lists enumerate, {$const: v} is copied)" })),
  },
  { ...Strict, description: "A pool (eDeploy's CMDB): entries written out, or a generate model" },
);
export type PoolInputBody = Static<typeof PoolInput>;

export const ApplyBody = Type.Object(
  {
    pools: Type.Optional(Type.Array(PoolInput, { maxItems: 1000 })),
    profiles: Type.Optional(Type.Array(ProfileInput, { maxItems: 10_000 })),
  },
  { ...Strict, description: 'Pools then profiles, created or replaced by name, all in one transaction' },
);
export type ApplyBodyType = Static<typeof ApplyBody>;

export const ApplyResult = Type.Object({
  pools: Type.Array(Type.Object({ name: Type.String(), outcome: Type.Enum(['created', 'updated', 'unchanged']), entries: Type.Integer() })),
  profiles: Type.Array(Type.Object({ name: Type.String(), outcome: Type.Enum(['created', 'updated', 'unchanged']), position: Type.Integer() })),
});

export const ProfileSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    position: Type.Integer(),
    description: Nullable(Type.String()),
    spec: Type.Array(Type.Array(Type.String())),
    specText: Nullable(Type.String({ description: 'the spec as it was written, when given as eDeploy text' })),
    quota: Nullable(Type.Integer({ description: 'machines that may hold the profile (held + remaining); null: unlimited' })),
    remaining: Nullable(Type.Integer({ description: "what is left to take (eDeploy's count in state); null: unlimited" })),
    held: Type.Integer({ description: 'machines counting against the quota now' }),
    pool: Nullable(Type.String()),
    releaseReturnsEntry: Type.Boolean(),
    deploy: DeployConfigSchema,
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'Profile' },
);
export type ProfileView = Static<typeof ProfileSchema>;

export const PoolSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    description: Nullable(Type.String()),
    model: Type.Unknown({ description: 'the generate model as given, or null when the entries were written out' }),
    entries: Type.Object({
      total: Type.Integer(),
      free: Type.Integer({ description: 'neither held by a machine nor marked used' }),
      held: Type.Integer({ description: 'held by a machine' }),
    }),
    profiles: Type.Array(Type.String(), { description: 'profiles that allocate from it' }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'Pool' },
);
export type PoolView = Static<typeof PoolSchema>;

export const PoolEntrySchema = Type.Object({
  id: Type.String(),
  position: Type.Integer({ description: 'index in the pool, from 0' }),
  data: Type.Record(Type.String(), Type.Unknown()),
  used: Type.Boolean(),
  machine: Nullable(Type.Object({ id: Type.String(), name: Type.String() })),
  allocatedAt: Nullable(Timestamp),
});
export type PoolEntryView = Static<typeof PoolEntrySchema>;

const MatchSummary = Type.Object({
  profile: Nullable(Type.String()),
  vars: Type.Record(Type.String(), Type.Unknown()),
  poolEntry: Nullable(Type.Object({ pool: Type.String(), id: Type.String(), position: Type.Integer() })),
  matchedAt: Nullable(Timestamp),
  error: Nullable(Type.String()),
});

const RuleFailureSchema = Type.Object({
  kind: Type.String({ enum: ['no-candidate', 'lines-taken', 'conflict'] }),
  rule: Type.Integer({ description: 'the failing spec line, from 1' }),
  spec: Type.Array(Type.String()),
  at: Nullable(Type.String({ description: 'file:line:column when the spec was given as text' })),
  bound: Type.Record(Type.String(), Type.String()),
  message: Type.String(),
  nearMisses: Type.Array(
    Type.Object({
      line: Type.Array(Type.String()),
      position: Nullable(Type.Integer()),
      reason: Nullable(Type.String()),
      takenByRule: Nullable(Type.Integer()),
    }),
  ),
});

export const ExplanationSchema = Type.Object({
  machine: Type.Object({ id: Type.String(), name: Type.String() }),
  current: Nullable(MatchSummary),
  selected: Nullable(Type.String({ description: 'the profile the machine would get if inspected now (pools aside)' })),
  profiles: Type.Array(
    Type.Object({
      name: Type.String(),
      position: Type.Integer(),
      remaining: Nullable(Type.Integer()),
      quotaExhausted: Type.Boolean({ description: 'not tried: no quota left (and the machine holds none of it)' }),
      matched: Type.Boolean(),
      vars: Type.Record(Type.String(), Type.String()),
      failure: Nullable(RuleFailureSchema),
      text: Type.String(),
    }),
  ),
});
export type ExplanationView = Static<typeof ExplanationSchema>;

export const SimulateBody = Type.Object(
  {
    machines: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 255 }),
            hw: Type.Array(Type.Array(Type.Unknown()), { maxItems: 100_000 }),
          },
          Strict,
        ),
        { maxItems: 10_000, description: 'hardware lists to try instead of the inventory' },
      ),
    ),
  },
  Strict,
);
export type SimulateBodyType = Static<typeof SimulateBody>;

export const SimulationSchema = Type.Object({
  source: Type.Enum(['inventory', 'hardware-lists']),
  items: Type.Array(
    Type.Object({
      machine: Type.String(),
      profile: Nullable(Type.String()),
      poolEntry: Nullable(Type.Object({ pool: Type.String(), position: Type.Integer(), reused: Type.Boolean() })),
      vars: Type.Record(Type.String(), Type.Unknown()),
      error: Nullable(Type.String()),
    }),
  ),
  profiles: Type.Array(Type.Object({ name: Type.String(), remainingBefore: Nullable(Type.Integer()), remainingAfter: Nullable(Type.Integer()) })),
  pools: Type.Array(Type.Object({ name: Type.String(), freeBefore: Type.Integer(), freeAfter: Type.Integer() })),
});
export type SimulationView = Static<typeof SimulationSchema>;
