import { PlinthError } from '../core/errors.js';

/**
 * The failures eDeploy reported to a booting machine, with eDeploy's own messages: tools
 * and people that grep for them keep working. They are conflicts with the current state of
 * the quotas and pools, not bad requests.
 */
export type EdeployErrorKind =
  /** `$$` variables were given and no CMDB entry carries them. */
  | 'cmdb-no-match'
  /** No free CMDB entry is left. */
  | 'cmdb-exhausted'
  /** Every profile in `state` has used up its quota. */
  | 'no-role-available'
  /** Some profiles have quota left, but none matches the machine. */
  | 'no-profile-matched';

export const CMDB_NO_MATCH_MESSAGE = 'No entry matched in the CMDB, aborting.';
export const CMDB_EXHAUSTED_MESSAGE = 'No more entry in the CMDB, aborting.';

export class EdeployError extends PlinthError {
  readonly kind: EdeployErrorKind;

  constructor(kind: EdeployErrorKind, message: string, details: Record<string, unknown> = {}) {
    super('conflict', message, { details: { kind, ...details } });
    this.name = 'EdeployError';
    this.kind = kind;
  }
}

export const isEdeployError = (e: unknown): e is EdeployError => e instanceof EdeployError;

export function noRoleAvailable(stateFile: string): EdeployError {
  return new EdeployError('no-role-available', `No more role available in ${stateFile}`);
}

export function noProfileMatched(configDir: string, roles: readonly string[]): EdeployError {
  return new EdeployError(
    'no-profile-matched',
    `Unable to match requirements on the following available roles in ${configDir}: ${roles.join(', ')}`,
    { roles: [...roles] },
  );
}
