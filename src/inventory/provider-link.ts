import type { Db } from '../store/database.js';
import { validation } from '../core/errors.js';
import { onEndpoint } from '../providers/endpoint-origin.js';
import type { ProviderType } from '../providers/types.js';

/**
 * The link from a machine to the appliance that controls it (`provider.applianceId`,
 * `provider.ref`), checked whenever an operator sets either half. The appliance must exist
 * (otherwise the first power request fails deep in a job), and the reference must stay on
 * the appliance's registered endpoint: every provider call carries the appliance's
 * credentials, so a reference may name a system there but never point somewhere else.
 * The HTTP providers refuse foreign origins again at the transport (endpoint-http.ts).
 */

/** Providers whose references are resolved as URLs against the endpoint's address. */
const HTTP_TYPES: ReadonlySet<string> = new Set<ProviderType>(['redfish', 'proxmox', 'vsphere']);

export interface ProviderLink {
  applianceId: string | null;
  ref: string | null;
}

/** Refuses a reference that would leave the appliance's endpoint, naming `provider.ref`. */
export function checkProviderRef(appliance: { type: string; address: string }, ref: string): void {
  if (HTTP_TYPES.has(appliance.type)) {
    if (!onEndpoint(appliance.address, ref)) {
      const origin = URL.canParse(appliance.address) ? new URL(appliance.address).origin : appliance.address;
      throw validation('provider.ref', `'${ref}' is not on the appliance's endpoint ${origin}; give a path or id there (e.g. /redfish/v1/Systems/1)`);
    }
    return;
  }
  // Tool-driven providers (ipmitool, virsh, the lab) take the reference as an argument: a URL
  // there would name another connection, and a leading '-' would read as an option.
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(ref) || ref.startsWith('//')) {
    throw validation('provider.ref', `'${ref}' is a URL; a ${appliance.type} reference names a system on the appliance (its address says where the appliance is)`);
  }
  if (ref.startsWith('-')) throw validation('provider.ref', `'${ref}' must not start with '-'`);
}

/** Checks a machine's provider link inside the caller's transaction: the appliance exists and the reference stays on it. */
export async function checkProviderLink(db: Db, link: ProviderLink): Promise<void> {
  if (link.applianceId === null) return;
  const appliance = await db.selectFrom('appliances').select(['type', 'address']).where('id', '=', link.applianceId).executeTakeFirst();
  if (!appliance) {
    throw validation('provider.applianceId', `no appliance has the id '${link.applianceId}' (plinth appliance list shows them)`);
  }
  if (link.ref !== null) checkProviderRef(appliance, link.ref);
}
