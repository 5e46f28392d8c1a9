/**
 * Faults through the registry and its resilience layer, against real peers: a BMC that does
 * not answer, wrong credentials (counted at the peer: no retry storm), 5xx then recovery,
 * and a circuit breaker isolating one dead endpoint while another stays fast.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CircuitOpenError, endpointKey, ProviderRegistry, ProviderResilience, type ProviderContext } from '../../src/providers/index.js';
import { ProviderError } from '../../src/providers/types.js';
import { startIpmiSim, type IpmiSimPeer } from '../support/peers/ipmi-sim.js';
import { startProxmoxPeer, type ProxmoxPeer } from '../support/peers/proxmox-server.js';
import { startRedfishPeer, type RedfishPeer } from '../support/peers/redfish-server.js';
import { startVsphereRestPeer, type VsphereRestPeer } from '../support/peers/vsphere-rest-server.js';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined };
const ctx = (timeoutMs = 3_000): ProviderContext => ({ timeoutMs, log: quiet });

function registry(options: ConstructorParameters<typeof ProviderResilience>[0] = {}): ProviderRegistry {
  return new ProviderRegistry(undefined, new ProviderResilience({ baseDelayMs: 20, maxDelayMs: 100, ...options }));
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('faults: Redfish', () => {
  let alive: RedfishPeer;
  let dead: RedfishPeer;
  beforeAll(async () => {
    [alive, dead] = await Promise.all([startRedfishPeer(), startRedfishPeer()]);
  });
  afterAll(async () => {
    await Promise.all([alive.close(), dead.close()]);
  });

  const endpoint = (peer: RedfishPeer, password = 'password') => ({ address: peer.url, username: 'admin', password });

  it('a BMC that does not answer times out (each attempt bounded), then the error says so', async () => {
    dead.faults.hang(true);
    try {
      const p = registry({ attempts: 2 }).create('redfish', endpoint(dead));
      // The BMC never answers: the call coming back at all is the per-attempt bound at work.
      const err = await failure(p.power.getPowerState(dead.systemPath, ctx(300)));
      expect(err.failure).toBe('timeout');
      expect(err.message).toMatch(/^redfish: .*300 ms/);
    } finally {
      dead.faults.hang(false);
    }
  });

  it('wrong password: exactly one login attempt per call, and the breaker stops further ones', async () => {
    const reg = registry({ failureThreshold: 3 });
    const p = reg.create('redfish', endpoint(alive, 'wrong-password'));
    const before = alive.failedLogins;
    for (let i = 0; i < 3; i++) expect((await failure(p.power.getPowerState(alive.systemPath, ctx()))).failure).toBe('auth');
    expect(alive.failedLogins - before).toBe(3);
    const open = await failure(p.power.getPowerState(alive.systemPath, ctx()));
    expect(open).toBeInstanceOf(CircuitOpenError);
    expect(open.failure).toBe('auth');
    expect(alive.failedLogins - before).toBe(3);
  });

  it('a wrong-password appliance opens only its own breaker, not that of a correct one at the same address', async () => {
    const reg = registry({ attempts: 1, failureThreshold: 1 });
    const wrong = reg.create('redfish', endpoint(alive, 'wrong-password'), { appliance: 'bmc-typo' });
    const right = reg.create('redfish', endpoint(alive), { appliance: 'bmc-right' });
    expect((await failure(wrong.power.getPowerState(alive.systemPath, ctx()))).failure).toBe('auth');
    expect(await failure(wrong.power.getPowerState(alive.systemPath, ctx()))).toBeInstanceOf(CircuitOpenError);
    expect(await right.power.getPowerState(alive.systemPath, ctx())).toBe('on');
    await right.close?.();
  });

  it('providers holding different credentials for one address keep their own sessions', async () => {
    const reg = registry();
    const created = alive.sessionsCreated;
    const deleted = alive.sessionsDeleted;
    const right = () => reg.create('redfish', endpoint(alive));
    const wrong = () => reg.create('redfish', endpoint(alive, 'wrong-password'));
    for (let i = 0; i < 3; i++) {
      expect(await right().power.getPowerState(alive.systemPath, ctx())).toBe('on');
      expect((await failure(wrong().power.getPowerState(alive.systemPath, ctx()))).failure).toBe('auth');
    }
    expect(alive.sessionsCreated - created).toBe(1);
    expect(alive.sessionsDeleted - deleted).toBe(0);
    await reg.closeAll();
  });

  it('5xx then recovery: the retried call succeeds and the peer saw every attempt', async () => {
    const p = registry().create('redfish', endpoint(alive));
    await p.power.getPowerState(alive.systemPath, ctx()); // session opened
    const before = alive.faults.count((r) => r.method === 'GET' && r.path === alive.systemPath);
    alive.faults.failNext(2, 503);
    expect(await p.power.getPowerState(alive.systemPath, ctx())).toBe('on');
    expect(alive.faults.count((r) => r.method === 'GET' && r.path === alive.systemPath) - before).toBe(3);
    await p.close?.();
  });

  it('a slow BMC: latency beyond the timeout fails as timeout, within it succeeds', async () => {
    alive.faults.setLatency(400);
    try {
      const p = registry({ attempts: 1 }).create('redfish', endpoint(alive));
      expect((await failure(p.power.getPowerState(alive.systemPath, ctx(150)))).failure).toBe('timeout');
      expect(await p.power.getPowerState(alive.systemPath, ctx(5_000))).toBe('on');
      await p.close?.();
    } finally {
      alive.faults.setLatency(0);
    }
  });

  it('the circuit opens for one dead BMC while another endpoint stays fast', async () => {
    const reg = registry({ attempts: 1, failureThreshold: 2, coolDownMs: 60_000 });
    const deadProvider = reg.create('redfish', endpoint(dead));
    const aliveProvider = reg.create('redfish', endpoint(alive));
    dead.faults.hang(true);
    try {
      // While the dead BMC eats its timeouts, the other endpoint answers: before the first
      // dead call has even given up (an order of events, not a stopwatch).
      let deadSettled = 0;
      const deadCall = () =>
        deadProvider.power.getPowerState(dead.systemPath, ctx(2_000)).then(
          () => 'answered',
          () => 'failed',
        ).finally(() => deadSettled++);
      const slow = (async () => [await deadCall(), await deadCall()])();
      expect(await aliveProvider.power.getPowerState(alive.systemPath, ctx())).toBe('on');
      expect(deadSettled).toBe(0);
      expect(await slow).toEqual(['failed', 'failed']);
      expect(reg.resilience.health(endpointKey('redfish', endpoint(dead))).circuit).toBe('open');
      // Open: fails fast, without touching the BMC.
      const seen = dead.faults.count();
      const err = await failure(deadProvider.power.getPowerState(dead.systemPath, ctx(400)));
      expect(err).toBeInstanceOf(CircuitOpenError);
      expect(err.message).toMatch(/is failing \(2 consecutive failures/);
      expect(dead.faults.count()).toBe(seen);
      expect(reg.resilience.health(endpointKey('redfish', endpoint(alive))).circuit).toBe('closed');
    } finally {
      dead.faults.hang(false);
    }
  });
});

describe('faults: IPMI (ipmi_sim)', () => {
  let peer: IpmiSimPeer;
  beforeAll(async () => {
    peer = await startIpmiSim();
  });
  afterAll(async () => peer.close());

  it('a frozen BMC is a timeout within the call budget, retried then broken', async () => {
    peer.freeze();
    try {
      const reg = registry({ attempts: 2, failureThreshold: 2 });
      const p = reg.create('ipmi', { address: peer.address, username: peer.username, password: peer.password });
      // The BMC never answers: the call coming back at all is the call budget at work.
      const err = await failure(p.power.getPowerState('bmc', ctx(1_200)));
      expect(['timeout', 'unreachable']).toContain(err.failure);
      expect(await failure(p.power.getPowerState('bmc', ctx(1_200)))).toBeInstanceOf(CircuitOpenError);
    } finally {
      peer.thaw();
    }
  });

  it('wrong password is not retried: one ipmitool run, an auth failure', async () => {
    const reg = registry();
    const p = reg.create('ipmi', { address: peer.address, username: peer.username, password: 'bad-pass' });
    // ipmitool's refused session can take seconds on a loaded machine: the budget only bounds a failure.
    expect((await failure(p.power.getPowerState('bmc', ctx(60_000)))).failure).toBe('auth');
    expect(reg.resilience.health(endpointKey('ipmi', { address: peer.address, username: peer.username, password: 'bad-pass' })).consecutiveFailures).toBe(1);
  });
});

describe('faults: Proxmox and vSphere REST', () => {
  let pve: ProxmoxPeer;
  let vc: VsphereRestPeer;
  beforeAll(async () => {
    [pve, vc] = await Promise.all([startProxmoxPeer(), startVsphereRestPeer()]);
  });
  afterAll(async () => {
    await Promise.all([pve.close(), vc.close()]);
  });

  it('Proxmox: 503 twice then recovery; a bad token is asked once', async () => {
    const reg = registry();
    const p = reg.create('proxmox', { address: pve.url, username: pve.tokenId, password: pve.secret, caCert: pve.caCert });
    pve.faults.failNext(2, 503);
    expect(await p.power.getPowerState('100', ctx())).toMatch(/on|off/);
    const bad = reg.create('proxmox', { address: `${pve.url}/`, username: pve.tokenId, password: 'wrong', caCert: pve.caCert });
    const before = pve.faults.count();
    expect((await failure(bad.power.getPowerState('100', ctx()))).failure).toBe('auth');
    expect(pve.faults.count() - before).toBe(1);
  });

  it('vSphere: 503 then recovery; wrong password logs in once', async () => {
    const reg = registry();
    const p = reg.create('vsphere', { address: vc.url, username: vc.username, password: vc.password, caCert: vc.caCert });
    expect(await p.power.getPowerState('vm-1001', ctx())).toMatch(/on|off/);
    vc.faults.failNext(1, 503);
    expect(await p.power.getPowerState('vm-1001', ctx())).toMatch(/on|off/);
    const before = vc.failedLogins;
    const bad = reg.create('vsphere', { address: `${vc.url}/`, username: vc.username, password: 'wrong', caCert: vc.caCert });
    expect((await failure(bad.power.getPowerState('vm-1001', ctx()))).failure).toBe('auth');
    expect(vc.failedLogins - before).toBe(1);
    await p.close?.();
  });
});
