import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Host credentials: what a host installed from a tree (eDeploy's `edeploy` command) reports
 * its version with and asks for the version a rolling upgrade wants it at.
 *
 * A credential is `plhost_<machineId>.<runId>.<signature>`, signed with a key derived from
 * the controller's secret key, for one machine and the deploy run that installed it. It is
 * derived, not stored: the deploy hands it to the installer (which writes it into the
 * installed system's /var/lib/edeploy/token, mode 0600), and the controller accepts it only
 * while that machine is deployed by that run (trees/host-versions.ts checks the rows). It
 * names one machine and grants two calls about that machine; release or redeploy it and the
 * credential is dead. Nothing else of the API accepts it.
 */
export const HOST_TOKEN_PREFIX = 'plhost';
export const HOST_TOKEN_PURPOSE = 'host-token';
const ID = /^[0-9a-f-]{36}$/;

const sign = (key: Buffer, body: string) => createHmac('sha256', key).update(`host:${body}`).digest('base64url');

/** The credential of a machine installed by a run (the same one every time: it is derived). */
export function mintHostToken(key: Buffer, machineId: string, runId: string): string {
  const body = `${machineId}.${runId}`;
  return `${HOST_TOKEN_PREFIX}_${body}.${sign(key, body)}`;
}

/** The machine and run a credential was signed for, or null when it is not one of this controller's key. */
export function openHostToken(key: Buffer, token: string): { machineId: string; runId: string } | null {
  if (!token.startsWith(`${HOST_TOKEN_PREFIX}_`) || token.length > 200) return null;
  const parts = token.slice(HOST_TOKEN_PREFIX.length + 1).split('.');
  if (parts.length !== 3 || !ID.test(parts[0]!) || !ID.test(parts[1]!)) return null;
  const given = Buffer.from(parts[2]!);
  const expected = Buffer.from(sign(key, `${parts[0]}.${parts[1]}`));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  return { machineId: parts[0]!, runId: parts[1]! };
}
