import { describe, expect, it } from 'vitest';
import { ProviderRegistry, createProvider } from './registry.js';
import { ProviderResilience } from './resilient.js';
import { PROVIDER_TYPES, ProviderError, type Provider } from './types.js';

describe('provider registry', () => {
  it('builds every built-in type, wrapped in the resilience layer', () => {
    for (const type of PROVIDER_TYPES.filter((t) => t !== 'qemu')) {
      const p = createProvider(type, { address: type === 'ipmi' ? '127.0.0.1:6230' : type === 'libvirt' ? 'test:///default' : 'https://127.0.0.1:1' });
      expect(p.type).toBe(type);
    }
  });

  it('has no qemu provider until the lab registers one', () => {
    const registry = new ProviderRegistry();
    expect(() => registry.create('qemu', { address: '/tmp/lab' })).toThrow(ProviderError);
    const lab: Provider = { type: 'qemu', capabilities: new Set(), power: createProvider('manual', { address: '' }).power, management: { setBootDevice: async () => undefined } };
    registry.register('qemu', () => lab);
    expect(registry.create('qemu', { address: '/tmp/lab' }, { resilience: false })).toBe(lab);
  });

  it('keeps one provider (one BMC session) per endpoint until it is closed or its settings change', async () => {
    const { startRedfishPeer } = await import('../../test/support/peers/redfish-server.js');
    const peer = await startRedfishPeer();
    const registry = new ProviderRegistry();
    const ctx = { timeoutMs: 5_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };
    const endpoint = { address: peer.url, username: 'admin', password: 'password' };
    try {
      await registry.create('redfish', endpoint).power.getPowerState(peer.systemPath, ctx);
      await registry.create('redfish', { ...endpoint }).power.getPowerState(peer.systemPath, ctx);
      expect(peer.sessionsCreated).toBe(1);
      await registry.create('redfish', endpoint).close?.();
      expect(peer.openSessions()).toBe(0);
      await registry.create('redfish', endpoint).power.getPowerState(peer.systemPath, ctx);
      expect(peer.sessionsCreated).toBe(2);
      await registry.closeAll();
      expect(peer.openSessions()).toBe(0);
    } finally {
      await peer.close();
    }
  });

  it("ends a named appliance's old sessions when its credentials change, and keeps other appliances' sessions", async () => {
    const { startRedfishPeer } = await import('../../test/support/peers/redfish-server.js');
    const peer = await startRedfishPeer();
    const registry = new ProviderRegistry();
    const ctx = { timeoutMs: 5_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };
    const endpoint = { address: peer.url, username: 'admin', password: 'password' };
    try {
      await registry.create('redfish', endpoint, { appliance: 'r1' }).power.getPowerState(peer.systemPath, ctx);
      await registry.create('redfish', endpoint, { appliance: 'r2' }).power.getPowerState(peer.systemPath, ctx);
      expect(peer.openSessions()).toBe(2);
      // r1's password is rotated (here: to a wrong one): r1's old session ends, r2's stays.
      const rotated = registry.create('redfish', { ...endpoint, password: 'rotated' }, { appliance: 'r1' });
      await expect(rotated.power.getPowerState(peer.systemPath, ctx)).rejects.toMatchObject({ failure: 'auth' });
      await expect.poll(() => peer.openSessions()).toBe(1);
      expect(await registry.create('redfish', endpoint, { appliance: 'r2' }).power.getPowerState(peer.systemPath, ctx)).toBe('on');
      expect(peer.sessionsCreated).toBe(2);
      await registry.closeAll();
    } finally {
      await peer.close();
    }
  });

  it('shares one breaker per endpoint across the providers it builds', async () => {
    const resilience = new ProviderResilience({ attempts: 1, failureThreshold: 1 });
    const registry = new ProviderRegistry(undefined, resilience);
    const ctx = { timeoutMs: 2_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };
    const first = registry.create('redfish', { address: 'http://127.0.0.1:9', username: 'u', password: 'p' });
    await expect(first.power.getPowerState('1', ctx)).rejects.toMatchObject({ failure: 'unreachable' });
    const second = registry.create('redfish', { address: 'http://127.0.0.1:9', username: 'u', password: 'p' });
    await expect(second.power.getPowerState('1', ctx)).rejects.toThrow(/is failing/);
  });

  it("forgets an appliance's breaker when its settings change, so the next call reaches the endpoint", async () => {
    const resilience = new ProviderResilience({ attempts: 1, failureThreshold: 1 });
    const registry = new ProviderRegistry(undefined, resilience);
    const ctx = { timeoutMs: 2_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };
    const endpoint = { address: 'http://127.0.0.1:9', username: 'u', password: 'p' };
    await expect(registry.create('redfish', endpoint, { appliance: 'bmc' }).power.getPowerState('1', ctx)).rejects.toMatchObject({ failure: 'unreachable' });
    await expect(registry.create('redfish', endpoint, { appliance: 'bmc' }).power.getPowerState('1', ctx)).rejects.toThrow(/is failing/);
    // Same address and credentials, another setting changed (e.g. its CA certificate): no fail-fast on the old failures.
    registry.forgetAppliance('redfish', 'bmc');
    const err = await registry.create('redfish', endpoint, { appliance: 'bmc' }).power.getPowerState('1', ctx).catch((e: unknown) => e);
    expect(err).toMatchObject({ failure: 'unreachable' });
    expect((err as Error).message).not.toMatch(/is failing/);
  });
});
