import { Type, type Static } from 'typebox';
import { TREE_NAME_PATTERN } from './deploy.js';

/**
 * What a host installed from a tree says to the controller, with its host credential
 * (`plhost_…`, /var/lib/edeploy/token; auth/host-tokens.ts) as bearer token — never a run
 * ticket or an API token. bin/edeploy is the one client (POSIX sh, curl or wget).
 *
 *   POST /agent/v1/host/version   HostVersionReport → HostVersionAnswer
 *       after every `edeploy upgrade` (and `edeploy report`): the role and version it runs now,
 *       whether an upgrade failed (and why), whether it needs a reboot
 *   GET  /agent/v1/host/desired   → HostDesiredAnswer
 *       the version a rolling upgrade wants this host at (`edeploy poll` upgrades to it)
 *
 * A host may send anything: every field is bounded and checked, a role or version that is
 * not a stored tree of the machine's role is refused (400 naming the field), and the report
 * changes only the reporting machine's row.
 */
const Strict = { additionalProperties: false } as const;
const name = (description?: string) => Type.String({ minLength: 1, maxLength: 100, pattern: TREE_NAME_PATTERN, ...(description ? { description } : {}) });
const Name = name();

export const HOST_RESULTS = ['upgraded', 'failed', 'running'] as const;
export type HostResult = (typeof HOST_RESULTS)[number];

export const HostVersionReportSchema = Type.Object(
  {
    role: Name,
    version: name('the version the host runs now (after a failed upgrade: the one it was at, or the one it reached)'),
    /** `upgraded`: an upgrade to `version` finished; `failed`: an upgrade to `target` failed; `running`: a plain report (boot, `edeploy report`). */
    result: Type.Enum(HOST_RESULTS),
    from: Type.Optional(Name),
    target: Type.Optional(Name),
    rebootNeeded: Type.Optional(Type.Boolean()),
    message: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  Strict,
);
export type HostVersionReport = Static<typeof HostVersionReportSchema>;

export const HostVersionAnswerSchema = Type.Object({ machine: Type.String(), role: Type.String(), version: Type.String() }, Strict);

export const HostDesiredAnswerSchema = Type.Object(
  {
    role: Type.String(),
    version: Type.String({ description: 'what the controller knows the host runs' }),
    desired: Type.Union([Type.String(), Type.Null()], { description: 'the version a rolling upgrade wants this host at; null: stay' }),
    roll: Type.Union([Type.String(), Type.Null()]),
  },
  Strict,
);
export type HostDesiredAnswer = Static<typeof HostDesiredAnswerSchema>;
