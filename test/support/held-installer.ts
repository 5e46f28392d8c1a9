/**
 * The installer's side of a hold, played over HTTP for tests of the clients that drive holds
 * (the /v1 Tateru API, Ansible modules): a machine netboots and reports facts (so it is
 * available), and later, once booted into the installer, its agent says hello and reports
 * its SSH server, as src/agent does on a real machine.
 */
import type { Facts } from '../../src/core/facts.js';
import { bladeFacts, type Http } from '../integration/matching-support.js';
import type { Backend } from './backends.js';
import { freshController, placeholderInstaller } from './controller.js';
import { startRedfishPeer } from './peers/redfish-server.js';

export interface HeldMachineIdentity {
  /** Index for bladeFacts: serial CZ0000000i, MACs 9c:b6:…. */
  index: number;
  uuid: string;
  assetTag?: string;
}

/** A test SSH host key, as an installer reports one. */
export const INSTALLER_HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGhvc3RrZXlnZW5lcmF0ZWRhdHRoaXNib290MTIz root@installer';

export function heldFacts(id: HeldMachineIdentity): Facts {
  const f = bladeFacts(id.index);
  return { ...f, system: { ...f.system, uuid: id.uuid, assetTag: id.assetTag ?? null } };
}

async function ok(step: string, r: Promise<{ status: number; body: string }>): Promise<string> {
  const res = await r;
  if (res.status !== 200) throw new Error(`${step}: HTTP ${res.status} ${res.body}`);
  return res.body;
}

/** The machine's boot script, and the run ticket it carries. */
async function bootTicket(http: Http, f: Facts): Promise<string> {
  const q = new URLSearchParams({ uuid: f.system.uuid ?? '', serial: f.system.serial ?? '', manufacturer: f.system.manufacturer ?? '', mac: f.nics[0]!.mac });
  if (f.system.assetTag) q.set('asset', f.system.assetTag);
  return ticketOf(await ok('boot script', http('GET', `/boot/machine.ipxe?${q}`)));
}

function ticketOf(script: string): string {
  const token = /plinth\.token=(\S+)/.exec(script)?.[1];
  if (!token) throw new Error(`the boot script carries no run token:\n${script}`);
  return token;
}

/** A new machine netboots, is enrolled and inspected: it is available. */
export async function availableMachine(http: Http, id: HeldMachineIdentity): Promise<void> {
  const f = heldFacts(id);
  const token = await bootTicket(http, f);
  await ok('hello', http('POST', '/agent/v1/hello', { agentVersion: 'test' }, token));
  await ok('facts', http('POST', '/agent/v1/facts', f, token));
}

/**
 * The machine (told to boot the installer) netboots it: the agent says hello with the run's
 * ticket and reports its SSH server. `id`: the identity it boots with (a HeldMachineIdentity,
 * or the MAC of a machine enrolled otherwise). Returns the ticket and the keys the hello handed over.
 */
export async function installerUp(
  http: Http,
  id: HeldMachineIdentity | { mac: string },
  ssh: { port?: number; addresses?: string[]; hostKeys?: string[] } = {},
): Promise<{ token: string; authorizedKeys: string[] }> {
  const token = 'mac' in id ? await macTicket(http, id.mac) : await bootTicket(http, heldFacts(id));
  const hello = JSON.parse(await ok('hello', http('POST', '/agent/v1/hello', { agentVersion: 'test' }, token)));
  await ok('ssh', http('POST', '/agent/v1/ssh', { port: ssh.port ?? 22, hostKeys: ssh.hostKeys ?? [INSTALLER_HOST_KEY], addresses: ssh.addresses ?? ['192.0.2.40'] }, token));
  return { token, authorizedKeys: hello.run?.params?.authorizedKeys ?? [] };
}

async function macTicket(http: Http, mac: string): Promise<string> {
  return ticketOf(await ok('boot script', http('GET', `/boot/machine.ipxe?mac=${mac}`)));
}

/**
 * A controller for tests of holds: machines behind a Redfish BMC (`root`/`calvin`, powered
 * off) whose power jobs run (short deadlines), and placeholder installer files.
 */
export async function heldInstallerController(backend: Backend, overrides: Record<string, unknown> = {}) {
  const peer = await startRedfishPeer({ username: 'root', password: 'calvin', powerState: 'Off' });
  const t = await freshController(
    backend,
    { publicUrl: 'http://10.0.2.2:7708', providers: { jobDeadline: '20s', timeout: '5s' }, ...overrides },
    { installer: placeholderInstaller('plinth-held-') },
  );
  t.controller.power.start();
  return { t, peer };
}
