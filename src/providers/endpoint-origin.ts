/**
 * Confinement of provider requests to the appliance's registered endpoint. A system
 * reference (a Redfish `@odata.id`, a link a BMC returns, a session Location) is resolved
 * against the endpoint's address the way the HTTP client will resolve it; anything whose
 * scheme, host or port differs is another origin, and the appliance's credentials must
 * never travel there. Resolution, not text inspection: `//elsewhere/x` and `/\elsewhere/x`
 * look like paths but resolve to another host.
 */

/** The URL `pathOrUrl` designates on the endpoint at `base`, or null when it leaves that origin or does not parse. */
export function onEndpoint(base: URL | string, pathOrUrl: string): URL | null {
  let baseUrl: URL;
  let target: URL;
  try {
    baseUrl = typeof base === 'string' ? new URL(base) : base;
    target = new URL(pathOrUrl, baseUrl);
  } catch {
    return null;
  }
  return target.origin === baseUrl.origin ? target : null;
}
