/**
 * The vSphere provider on both APIs: the Automation REST API against a service answering as
 * the API reference documents (test/support/peers/vsphere-rest-server.ts), and the SOAP API
 * against govmomi's simulator built from Debian packages (a real vim25 implementation whose
 * `/api` answers 404, like an older vCenter).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { EndpointHttpClient } from '../../src/providers/endpoint-http.js';
import { ProviderError, type BootDevice, type ProviderContext } from '../../src/providers/types.js';
import { VsphereProvider, firstBoot, reorderBoot } from '../../src/providers/vsphere/index.js';
import { asArray, textOf, VsphereSoapClient } from '../../src/providers/vsphere/vsphere-soap.js';
import { govmomiSimUnavailable, startGovmomiSim, type GovmomiSimPeer } from '../support/peers/govmomi-sim.js';
import { startVsphereRestPeer, type VsphereRestPeer } from '../support/peers/vsphere-rest-server.js';

const ctx: ProviderContext = { timeoutMs: 10_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };
const REST_BOOT: Record<string, BootDevice> = { ETHERNET: 'pxe', DISK: 'disk', CDROM: 'cd' };

function restProvider(peer: VsphereRestPeer, password = peer.password): VsphereProvider {
  return new VsphereProvider({ address: peer.url, username: peer.username, password, caCert: peer.caCert });
}

let restPeer: VsphereRestPeer;
describeProviderConformance({
  name: 'vsphere (Automation REST API shapes)',
  setup: async () => {
    restPeer = await startVsphereRestPeer();
    const peer = restPeer;
    const vm = () => peer.vms.get('vm-1001')!;
    return {
      provider: restProvider(peer),
      ref: 'vm-1001',
      withWrongCredentials: () => restProvider(peer, 'Wrong-Pass-9'),
      wrongPassword: 'Wrong-Pass-9',
      endSessions: async () => peer.sessions.clear(),
      misbehave: peer.faults,
      observe: {
        logins: () => peer.logins,
        powerState: async () => (vm().powerState === 'POWERED_ON' ? 'on' : 'off'),
        bootDevice: async () => {
          const first = REST_BOOT[String(vm().bootDevices[0]?.['type'] ?? '')];
          return first ? { device: first } : undefined;
        },
      },
      ctx,
    };
  },
  teardown: async () => restPeer.close(),
});

describe('vsphere: REST', () => {
  let peer: VsphereRestPeer;
  beforeAll(async () => {
    peer = await startVsphereRestPeer();
  });
  afterAll(async () => peer.close());

  it('chooses the REST API where POST /api/session works, and ends the session on close', async () => {
    const p = restProvider(peer);
    await p.power.getPowerState('vm-1001', ctx);
    expect(p.api).toBe('rest');
    expect(peer.sessions.size).toBe(1);
    await p.close();
    expect(peer.sessions.size).toBe(0);
  });

  it('lists VMs with the BIOS UUID and NIC MACs from Vm.Info', async () => {
    const systems = await restProvider(peer).management.listSystems!(ctx);
    expect(systems).toEqual([
      { ref: 'vm-1001', name: 'web-vc-01', systemUuid: '4205a1b2-c3d4-e5f6-0718-293a4b5c6d7e', macs: ['00:50:56:a1:b2:01'], powerState: expect.stringMatching(/on|off/) },
      { ref: 'vm-1002', name: 'db-vc-01', systemUuid: '42051122-3344-5566-7788-99aabbccddee', macs: ['00:50:56:a1:b2:02', '00:50:56:a1:b2:03'], powerState: expect.stringMatching(/on|off/) },
    ]);
  });

  it('puts the network first and keeps the configured disk behind it; refuses the wrong firmware', async () => {
    const p = restProvider(peer);
    await p.management.setBootDevice('vm-1002', 'pxe', { mode: 'uefi' }, ctx);
    expect(peer.vms.get('vm-1002')!.bootDevices).toEqual([
      { type: 'ETHERNET', nic: '4000' },
      { type: 'DISK', disks: ['2000'] },
    ]);
    const err = (await p.management.setBootDevice('vm-1002', 'pxe', { mode: 'legacy' }, ctx).catch((e: unknown) => e)) as ProviderError;
    expect(err.failure).toBe('unsupported');
    const noCd = (await p.management.setBootDevice('vm-1002', 'cd', {}, ctx).catch((e: unknown) => e)) as ProviderError;
    expect(noCd.failure).toBe('unsupported');
    expect(noCd.message).toMatch(/no CD drive/);
  });

  it('wrong password: one refused login, an auth failure without the password', async () => {
    const before = peer.failedLogins;
    const err = (await restProvider(peer, 'Not-It-42').power.getPowerState('vm-1001', ctx).catch((e: unknown) => e)) as ProviderError;
    expect(err.failure).toBe('auth');
    expect(err.message).toContain('UNAUTHENTICATED');
    expect(err.message).not.toContain('Not-It-42');
    expect(peer.failedLogins - before).toBe(1);
  });

  it('an expired session (401) is replaced by one new login', async () => {
    const p = restProvider(peer);
    await p.power.getPowerState('vm-1001', ctx);
    peer.sessions.clear();
    await expect(p.power.getPowerState('vm-1001', ctx)).resolves.toMatch(/^(on|off)$/);
    expect(peer.sessions.size).toBe(1);
    await p.close();
  });

  it('a session refused again right after a fresh login fails once, saying so (not blaming the password)', async () => {
    const p = restProvider(peer);
    await p.power.getPowerState('vm-1001', ctx);
    // A server that accepts the login but keeps no session (restarting, privileges missing).
    const add = peer.sessions.add.bind(peer.sessions);
    peer.sessions.clear();
    peer.sessions.add = () => peer.sessions;
    try {
      const before = peer.faults.count((r) => r.path === '/api/session');
      const err = (await p.power.getPowerState('vm-1001', ctx).catch((e: unknown) => e)) as ProviderError;
      expect(err.failure).toBe('auth');
      expect(err.message).toMatch(/refused again right after a fresh login/);
      expect(err.message).not.toMatch(/check the user name and password/);
      expect(peer.faults.count((r) => r.path === '/api/session') - before).toBe(1);
    } finally {
      peer.sessions.add = add;
    }
    await p.close();
  });

  it('an unknown VM is not-found', async () => {
    const err = (await restProvider(peer).power.getPowerState('vm-9', ctx).catch((e: unknown) => e)) as ProviderError;
    expect(err.failure).toBe('not-found');
  });
});

describe('vsphere: boot order arithmetic', () => {
  const devices = { nics: ['4000', '4001'], disks: ['2000'], cdrom: true };
  it('moves the wanted device first and keeps the others in order', () => {
    const order = reorderBoot([{ kind: 'disk', keys: ['2000'] }, { kind: 'cdrom' }], devices, 'pxe');
    expect(order).toEqual([{ kind: 'network', key: '4000' }, { kind: 'disk', keys: ['2000'] }, { kind: 'cdrom' }]);
    expect(firstBoot(reorderBoot(order, devices, 'cd'))).toBe('cd');
  });
});

const simUnavailable = govmomiSimUnavailable();

/** Reads a VM through its own SOAP session: the simulator's state, not the provider's view of it. */
function observer(sim: GovmomiSimPeer): VsphereSoapClient {
  const endpoint = { address: sim.address, username: sim.username, password: sim.password };
  return new VsphereSoapClient(endpoint, new EndpointHttpClient({ provider: 'vsphere', baseUrl: sim.address }));
}

/** The keys of the sessions the simulator holds, but the observer's own. */
async function otherSessions(look: VsphereSoapClient): Promise<string[]> {
  const manager = { type: 'SessionManager', value: 'SessionManager' };
  const props = await look.retrieveOne(manager, ['sessionList', 'currentSession'], ctx);
  const own = textOf((props['currentSession'] as Record<string, unknown> | undefined)?.['key']);
  const list = asArray((props['sessionList'] as Record<string, unknown> | undefined)?.['UserSession']) as Array<Record<string, unknown>>;
  return list.map((s) => textOf(s['key'])).filter((k): k is string => !!k && k !== own);
}

/**
 * Ends every session but the observer's own, as a vCenter restart or its idle-session reaper
 * does (SessionManager.TerminateSession on the keys in sessionList).
 */
async function killOtherSessions(look: VsphereSoapClient): Promise<number> {
  const others = await otherSessions(look);
  if (others.length > 0) await look.call('TerminateSession', `<_this type="SessionManager">SessionManager</_this>${others.map((k) => `<sessionId>${k}</sessionId>`).join('')}`, ctx);
  return others.length;
}

if (simUnavailable === undefined) {
  let sim: GovmomiSimPeer;
  let vm: string;
  describeProviderConformance({
    name: 'vsphere (SOAP, govmomi simulator)',
    setup: async () => {
      sim = await startGovmomiSim();
      const look = observer(sim);
      const first = (await look.retrieveAll('VirtualMachine', ['name'], ctx)).map((o) => o.obj.value).sort()[0]!;
      vm = first;
      return {
        provider: new VsphereProvider({ address: sim.address, username: sim.username, password: sim.password }),
        ref: vm,
        withWrongCredentials: () => new VsphereProvider({ address: sim.address, username: sim.username, password: 'wrong-sim-pass' }),
        wrongPassword: 'wrong-sim-pass',
        endSessions: async () => {
          await killOtherSessions(look);
        },
        observe: {
          // The simulator counts no logins: the sessions open besides the observer's own.
          logins: async () => (await otherSessions(look)).length,
          powerState: async () => (textOf((await look.retrieveOne({ type: 'VirtualMachine', value: vm }, ['runtime.powerState'], ctx))['runtime.powerState']) === 'poweredOn' ? 'on' : 'off'),
          bootDevice: async () => {
            const props = await look.retrieveOne({ type: 'VirtualMachine', value: vm }, ['config.bootOptions'], ctx);
            const first = asArray((props['config.bootOptions'] as Record<string, unknown> | undefined)?.['bootOrder'])[0] as Record<string, unknown> | undefined;
            const type = String(first?.['@_type'] ?? '');
            const device: BootDevice | undefined = type.endsWith('EthernetDevice') ? 'pxe' : type.endsWith('DiskDevice') ? 'disk' : type.endsWith('CdromDevice') ? 'cd' : undefined;
            return device ? { device } : undefined;
          },
        },
        ctx,
      };
    },
    teardown: async () => sim.close(),
  });

  describe('vsphere: SOAP against the govmomi simulator', () => {
    let peer: GovmomiSimPeer;
    beforeAll(async () => {
      peer = await startGovmomiSim();
    });
    afterAll(async () => peer?.close());

    it('falls back to SOAP where /api answers 404, and lists the inventory with config.uuid and MACs', async () => {
      const p = new VsphereProvider({ address: peer.address, username: peer.username, password: peer.password });
      const systems = await p.management.listSystems!(ctx);
      expect(p.api).toBe('soap');
      expect(systems.length).toBeGreaterThanOrEqual(2);
      for (const s of systems) {
        expect(s.ref).toMatch(/^vm-\d+$/);
        expect(s.systemUuid).toMatch(/^[0-9a-f-]{36}$/);
        expect(s.macs.length).toBeGreaterThan(0);
      }
      await p.close();
    });

    it('reconfigures the boot order (ReconfigVM_Task) and the simulator holds it', async () => {
      const p = new VsphereProvider({ address: peer.address, username: peer.username, password: peer.password });
      const [system] = await p.management.listSystems!(ctx);
      await p.management.setBootDevice(system!.ref, 'pxe', {}, ctx);
      const props = await observer(peer).retrieveOne({ type: 'VirtualMachine', value: system!.ref }, ['config.bootOptions'], ctx);
      const order = asArray((props['config.bootOptions'] as Record<string, unknown>)['bootOrder']) as Array<Record<string, unknown>>;
      expect(String(order[0]!['@_type'])).toBe('VirtualMachineBootOptionsBootableEthernetDevice');
      expect(String(order[1]!['@_type'])).toBe('VirtualMachineBootOptionsBootableDiskDevice');
      await p.close();
    });

    it('a session the server forgot (restart, idle reaping) is replaced by one new login, for reads and actions', async () => {
      const look = observer(peer);
      const p = new VsphereProvider({ address: peer.address, username: peer.username, password: peer.password });
      const [system] = await p.management.listSystems!(ctx);
      const before = await p.power.getPowerState(system!.ref, ctx);
      expect(before).toMatch(/^(on|off)$/);
      expect(await killOtherSessions(look)).toBeGreaterThan(0);
      // The collector answers a dead session with missingSet NotAuthenticated, not a fault:
      // it must not read as `unknown`.
      expect(await p.power.getPowerState(system!.ref, ctx)).toBe(before);
      expect(await killOtherSessions(look)).toBe(1);
      await p.power.setPowerState(system!.ref, before === 'on' ? 'off' : 'on', ctx);
      const now = textOf((await look.retrieveOne({ type: 'VirtualMachine', value: system!.ref }, ['runtime.powerState'], ctx))['runtime.powerState']);
      expect(now).toBe(before === 'on' ? 'poweredOff' : 'poweredOn');
      await p.close();
    });

    it('wrong password: InvalidLogin becomes an auth failure', async () => {
      const p = new VsphereProvider({ address: peer.address, username: peer.username, password: 'nope-nope' });
      const err = (await p.power.getPowerState('vm-1', ctx).catch((e: unknown) => e)) as ProviderError;
      expect(err.failure).toBe('auth');
      expect(err.message).toMatch(/Login/);
    });
  });
} else {
  describe('vsphere: SOAP against the govmomi simulator', () => {
    it.skip(`not run here: ${simUnavailable}`, () => undefined);
  });
}
