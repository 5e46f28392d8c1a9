/**
 * The Redfish provider against the test Redfish service serving the DMTF public mockup and
 * its vendor-shaped variants (test/support/peers/redfish-variants.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { RedfishProvider } from '../../src/providers/redfish/index.js';
import { verifiedPowerAction } from '../../src/providers/verified-power.js';
import { executeJob } from '../../src/power/execute.js';
import { ProviderError, type BootDevice, type Capability, type ProviderContext } from '../../src/providers/types.js';
import { startRedfishPeer, type RedfishPeer } from '../support/peers/redfish-server.js';
import { REDFISH_VARIANTS, type RedfishVariant } from '../support/peers/redfish-variants.js';

const ctx: ProviderContext = { timeoutMs: 5_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };
const TARGET_TO_DEVICE: Record<string, BootDevice> = { Pxe: 'pxe', Hdd: 'disk', Cd: 'cd', UefiHttp: 'uefi-http' };

// The mockup's BootSourceOverrideTarget list has no UefiHttp; only the iDRAC shapes offer it
// (listed on iDRAC 9, no list at all on iDRAC 10).
const LACKS_UEFI_HTTP: Record<RedfishVariant, Capability[]> = {
  dmtf: ['boot.uefi-http'],
  idrac: [],
  idrac10: [],
  ilo: ['boot.uefi-http'],
  xcc: ['boot.uefi-http'],
  supermicro: ['boot.uefi-http'],
  actioninfo: ['boot.uefi-http'],
};

function provider(peer: RedfishPeer, overrides: Partial<ConstructorParameters<typeof RedfishProvider>[0]> = {}): RedfishProvider {
  return new RedfishProvider({ address: peer.url, username: 'admin', password: 'password', caCert: peer.caCert, ...overrides });
}

for (const variant of REDFISH_VARIANTS) {
  let peer: RedfishPeer;
  describeProviderConformance({
    name: `redfish (${variant})`,
    peerLacks: LACKS_UEFI_HTTP[variant],
    setup: async () => {
      peer = await startRedfishPeer({ variant, tls: variant === 'ilo' });
      return {
        provider: provider(peer),
        ref: peer.systemPath,
        withWrongCredentials: () => provider(peer, { password: 'wrong-secret-pw' }),
        wrongPassword: 'wrong-secret-pw',
        misbehave: peer.faults,
        observe: {
          logins: () => peer.sessionsCreated,
          powerState: async () => (peer.system()['PowerState'] === 'On' ? 'on' : 'off'),
          bootDevice: async () => {
            const boot = peer.system()['Boot'] as Record<string, string>;
            if (boot['BootSourceOverrideEnabled'] === 'Disabled') return undefined;
            const device = TARGET_TO_DEVICE[boot['BootSourceOverrideTarget'] ?? ''];
            if (!device) return undefined;
            return { device, persistent: boot['BootSourceOverrideEnabled'] === 'Continuous', mode: boot['BootSourceOverrideMode'] === 'Legacy' ? 'legacy' : 'uefi' };
          },
          virtualMedia: async () => peer.insertedImage(),
        },
        endSessions: async () => peer.expireSessions(),
        ctx,
      };
    },
    teardown: async () => peer.close(),
  });
}

describe('redfish: authentication and sessions', () => {
  let peer: RedfishPeer;
  beforeAll(async () => {
    peer = await startRedfishPeer({ variant: 'ilo' });
  });
  afterAll(async () => peer.close());

  it('opens one session for many calls and deletes it on close (absolute Location, trailing slashes)', async () => {
    const p = provider(peer);
    const before = peer.sessionsCreated;
    await p.power.getPowerState(peer.systemPath, ctx);
    await p.power.getPowerState(peer.systemPath, ctx);
    await Promise.all([p.power.getPowerState(peer.systemPath, ctx), p.power.getPowerState(peer.systemPath, ctx)]);
    expect(p.authMode).toBe('session');
    expect(peer.sessionsCreated - before).toBe(1);
    expect(peer.openSessions()).toBe(1);
    await p.close();
    expect(peer.openSessions()).toBe(0);
    expect(peer.sessionsDeleted).toBe(1);
  });

  it('logs in again once when the BMC has expired the session', async () => {
    const p = provider(peer);
    await p.power.getPowerState(peer.systemPath, ctx);
    peer.expireSessions();
    expect(await p.power.getPowerState(peer.systemPath, ctx)).toMatch(/on|off/);
    expect(peer.openSessions()).toBe(1);
    await p.close();
  });

  it('falls back to HTTP basic auth where there is no SessionService', async () => {
    const basicPeer = await startRedfishPeer({ sessionService: false });
    try {
      const p = provider(basicPeer);
      expect(await p.power.getPowerState(basicPeer.systemPath, ctx)).toBe('on');
      expect(p.authMode).toBe('basic');
      expect(basicPeer.faults.count((r) => r.auth === 'basic')).toBeGreaterThan(0);
      await p.close();
    } finally {
      await basicPeer.close();
    }
  });

  it('refuses wrong credentials with one login attempt and no password in the message', async () => {
    const p = provider(peer, { password: 'Sup3rSecret!' });
    const before = peer.failedLogins;
    const err = (await p.power.getPowerState(peer.systemPath, ctx).catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.failure).toBe('auth');
    expect(err.message).toMatch(/^redfish: /);
    expect(err.message).not.toContain('Sup3rSecret!');
    expect(peer.failedLogins - before).toBe(1);
    await p.close();
  });
});

describe('redfish: error text', () => {
  it('keeps error.message when the ExtendedInfo entries carry only a MessageId (sushy-tools)', async () => {
    const sushy = await startRedfishPeer({ errorShape: 'sushy' });
    try {
      const err = (await provider(sushy, { password: 'Not-The-One-7' }).power.getPowerState(sushy.systemPath, ctx).catch((e: unknown) => e)) as ProviderError;
      expect(err.failure).toBe('auth');
      expect(err.message).toContain('There is no valid session established with the implementation.');
      expect(err.message).toContain('Base.1.0.GeneralError');
      const p = provider(sushy);
      const missing = (await p.power.getPowerState('/redfish/v1/Systems/absent', ctx).catch((e: unknown) => e)) as ProviderError;
      expect(missing.failure).toBe('not-found');
      expect(missing.message).toContain('The resource at the URI /redfish/v1/Systems/absent was not found.');
      await p.close();
    } finally {
      await sushy.close();
    }
  });

  it("shows each ExtendedInfo entry's Message where the BMC gives one (DMTF shape)", async () => {
    const dmtf = await startRedfishPeer();
    try {
      const err = (await provider(dmtf, { password: 'Not-The-One-7' }).power.getPowerState(dmtf.systemPath, ctx).catch((e: unknown) => e)) as ProviderError;
      expect(err.message).toContain('Base.1.8.NoValidSession: There is no valid session established with the implementation.');
    } finally {
      await dmtf.close();
    }
  });
});

describe('redfish: TLS', () => {
  let peer: RedfishPeer;
  beforeAll(async () => {
    peer = await startRedfishPeer({ tls: true });
  });
  afterAll(async () => peer.close());

  it('verifies certificates by default and says how to fix an untrusted one', async () => {
    const p = provider(peer, { caCert: undefined });
    const err = (await p.power.getPowerState(peer.systemPath, ctx).catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.failure).toBe('protocol');
    expect(err.message).toMatch(/certificate not trusted.*caCert/);
    expect(peer.faults.count()).toBe(0);
    await p.close();
  });

  it('trusts the endpoint CA certificate', async () => {
    const p = provider(peer);
    expect(await p.power.getPowerState(peer.systemPath, ctx)).toBe('on');
    await p.close();
  });

  it('skips verification only on an explicit insecure opt-out', async () => {
    const p = provider(peer, { caCert: undefined, insecure: true });
    expect(await p.power.getPowerState(peer.systemPath, ctx)).toBe('on');
    await p.close();
  });
});

describe('redfish: vendor quirks', () => {
  it('iDRAC: sends BootSourceOverrideMode in a PATCH of its own (SYS410)', async () => {
    const peer = await startRedfishPeer({ variant: 'idrac' });
    try {
      const p = provider(peer);
      await p.management.setBootDevice(peer.systemPath, 'pxe', { mode: 'legacy' }, ctx);
      const boot = peer.system()['Boot'] as Record<string, unknown>;
      expect(boot).toMatchObject({ BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once', BootSourceOverrideMode: 'Legacy' });
      expect(peer.faults.count((r) => r.method === 'PATCH')).toBe(2);
      await p.close();
    } finally {
      await peer.close();
    }
  });

  it('iDRAC: inserts virtual media through the Manager CD slot actions', async () => {
    const peer = await startRedfishPeer({ variant: 'idrac' });
    try {
      const p = provider(peer);
      await p.management.insertVirtualMedia!(peer.systemPath, 'http://192.0.2.1/x.iso', ctx);
      expect(peer.resource('/redfish/v1/Managers/iDRAC.Embedded.1/VirtualMedia/CD')).toMatchObject({ Inserted: true, Image: 'http://192.0.2.1/x.iso' });
      expect(peer.faults.count((r) => r.method === 'POST' && r.path.endsWith('VirtualMedia.InsertMedia'))).toBe(1);
      await p.close();
    } finally {
      await peer.close();
    }
  });

  it('iLO: refuses a boot mode change it cannot make, never sends the read-only property', async () => {
    const peer = await startRedfishPeer({ variant: 'ilo' });
    try {
      const p = provider(peer);
      const err = (await p.management.setBootDevice(peer.systemPath, 'pxe', { mode: 'legacy' }, ctx).catch((e: unknown) => e)) as ProviderError;
      expect(err.failure).toBe('unsupported');
      expect(err.message).toMatch(/BIOS boot mode/);
      await p.management.setBootDevice(peer.systemPath, 'pxe', { mode: 'uefi' }, ctx);
      expect(peer.system()['Boot']).toMatchObject({ BootSourceOverrideTarget: 'Pxe', BootSourceOverrideMode: 'UEFI' });
      await p.close();
    } finally {
      await peer.close();
    }
  });

  it('iLO: soft-off presses the power button when GracefulShutdown is not offered; reboot of an off server powers it on', async () => {
    const peer = await startRedfishPeer({ variant: 'ilo' });
    try {
      const p = provider(peer);
      await p.power.setPowerState(peer.systemPath, 'soft-off', ctx);
      expect(peer.resets).toEqual(['PushPowerButton']);
      await p.power.reboot(peer.systemPath, ctx);
      expect(peer.resets).toEqual(['PushPowerButton', 'On']);
      await p.close();
    } finally {
      await peer.close();
    }
  });

  it('Supermicro: repeats the current boot mode so it does not revert', async () => {
    const peer = await startRedfishPeer({ variant: 'supermicro' });
    try {
      const p = provider(peer);
      await p.management.setBootDevice(peer.systemPath, 'pxe', {}, ctx);
      expect(peer.system()['Boot']).toMatchObject({ BootSourceOverrideTarget: 'Pxe', BootSourceOverrideMode: 'UEFI' });
      await p.close();
    } finally {
      await peer.close();
    }
  });

  it('Lenovo XCC: mounts by PATCH into an EXT slot, never an RDOC slot', async () => {
    const peer = await startRedfishPeer({ variant: 'xcc' });
    try {
      const p = provider(peer);
      await p.management.insertVirtualMedia!(peer.systemPath, 'http://192.0.2.1/x.iso', ctx);
      expect(peer.resource('/redfish/v1/Managers/1/VirtualMedia/EXT1')).toMatchObject({ Inserted: true, Image: 'http://192.0.2.1/x.iso' });
      expect(peer.resource('/redfish/v1/Managers/1/VirtualMedia/RDOC1')).toMatchObject({ Inserted: false });
      await p.close();
    } finally {
      await peer.close();
    }
  });

  it('a service without ForceRestart or PowerCycle is rebooted by ForceOff, wait for Off, then On', async () => {
    const peer = await startRedfishPeer({ variant: 'dmtf' });
    try {
      const reset = (peer.system()['Actions'] as Record<string, Record<string, unknown>>)['#ComputerSystem.Reset']!;
      reset['ResetType@Redfish.AllowableValues'] = ['On', 'ForceOff', 'GracefulShutdown', 'Nmi'];
      const p = provider(peer);
      await p.power.reboot(peer.systemPath, ctx);
      expect(peer.resets).toEqual(['ForceOff', 'On']);
      expect(peer.system()['PowerState']).toBe('On');
      await p.close();
    } finally {
      await peer.close();
    }
  });

  it('UEFI HTTP boot sends the URL with the override (iDRAC lists UefiHttp)', async () => {
    const peer = await startRedfishPeer({ variant: 'idrac' });
    try {
      const p = provider(peer);
      await p.management.setBootDevice(peer.systemPath, 'uefi-http', { url: 'http://192.0.2.10/boot.efi' }, ctx);
      expect(peer.system()['Boot']).toMatchObject({ BootSourceOverrideTarget: 'UefiHttp', HttpBootUri: 'http://192.0.2.10/boot.efi', BootSourceOverrideMode: 'UEFI' });
      const err = (await p.management.setBootDevice(peer.systemPath, 'uefi-http', {}, ctx).catch((e: unknown) => e)) as ProviderError;
      expect(err.message).toMatch(/needs the URL/);
      await p.close();
    } finally {
      await peer.close();
    }
  });

  it('the endpoint option `quirks` overrides detection', async () => {
    const peer = await startRedfishPeer({ variant: 'dmtf' });
    try {
      const p = provider(peer, { options: { quirks: 'hpe' } });
      const err = (await p.management.setBootDevice(peer.systemPath, 'pxe', { mode: 'legacy' }, ctx).catch((e: unknown) => e)) as ProviderError;
      expect(err.failure).toBe('unsupported');
      await p.close();
    } finally {
      await peer.close();
    }
  });
});

describe('redfish: hooks for a lab VM behind the service', () => {
  it('reports power changes with the boot target the boot used, and consumes a one-time override', async () => {
    const events: Array<{ state: string; bootTarget: string }> = [];
    const peer = await startRedfishPeer({ powerState: 'Off', onPowerChange: (_id, state, d) => events.push({ state, bootTarget: d.bootTarget }) });
    try {
      const p = provider(peer);
      await p.management.setBootDevice(peer.systemPath, 'pxe', {}, ctx);
      await p.power.setPowerState(peer.systemPath, 'on', ctx);
      await p.power.reboot(peer.systemPath, ctx);
      expect(events).toEqual([
        { state: 'On', bootTarget: 'Pxe' },
        { state: 'On', bootTarget: 'None' },
      ]);
      await p.close();
    } finally {
      await peer.close();
    }
  });

  it('enumerates the system with identity and host MACs (not the BMC host interface)', async () => {
    const peer = await startRedfishPeer();
    try {
      const p = provider(peer);
      const [system] = await p.management.listSystems!(ctx);
      expect(system).toEqual({
        ref: '/redfish/v1/Systems/437XR1138R2',
        name: 'WebFrontEnd483',
        systemUuid: '38947555-7742-3448-3784-823347823834',
        serial: '437XR1138R2',
        manufacturer: 'Contoso',
        productName: '3500',
        powerState: 'on',
        macs: expect.arrayContaining(['12:44:6a:3b:04:11']),
      });
      expect(system!.macs).not.toContain('aa:bb:cc:dd:ee:fe');
      await p.close();
    } finally {
      await peer.close();
    }
  });
});

describe('redfish: power actions are verified, boot overrides read back', () => {
  const verify = { timeoutMs: 5_000, intervalMs: 10 };

  it('on then off at once against a BMC that shows the old state for a while: ForceOff is sent and the system ends off', async () => {
    // sushy-tools in front of libvirt answers a reset at once and reports the old PowerState after it.
    const peer = await startRedfishPeer({ powerState: 'Off', transitionReads: 3 });
    const p = provider(peer);
    try {
      const on = await executeJob({ kind: 'power', ref: peer.systemPath, target: 'on' }, p, ctx, verify);
      expect(on).toEqual({ power: 'on' });
      const off = await executeJob({ kind: 'power', ref: peer.systemPath, target: 'off' }, p, ctx, verify);
      expect(off).toEqual({ power: 'off' });
      expect(peer.resets).toEqual(['On', 'ForceOff']);
      expect(peer.system()['PowerState']).toBe('Off');
    } finally {
      await p.close();
      await peer.close();
    }
  });

  it('a system that never reaches the target state fails the action as a timeout naming the state it reads', async () => {
    const peer = await startRedfishPeer({ powerState: 'Off', transitionReads: 1_000_000 });
    const p = provider(peer);
    try {
      const err = await verifiedPowerAction(p, peer.systemPath, 'on', ctx, { timeoutMs: 200, intervalMs: 10 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).failure).toBe('timeout');
      expect((err as ProviderError).message).toMatch(/did not reach power 'on'.*reads 'off'/);
    } finally {
      await p.close();
      await peer.close();
    }
  });

  it('a BMC that turns a one-time override into a persistent one is an error naming what it kept', async () => {
    const peer = await startRedfishPeer({ onceBecomesContinuous: true });
    const p = provider(peer);
    try {
      const err = await p.management.setBootDevice(peer.systemPath, 'pxe', { persistent: false }, ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).message).toContain('accepted boot override Pxe/Once but kept Pxe/Continuous');
      // A persistent request is what this BMC does keep.
      await p.management.setBootDevice(peer.systemPath, 'pxe', { persistent: true }, ctx);
    } finally {
      await p.close();
      await peer.close();
    }
  });

  it('a BMC that answers a boot mode change with success and keeps its mode is an error naming the mode it kept', async () => {
    const peer = await startRedfishPeer({ modeIgnored: true });
    const p = provider(peer);
    try {
      const err = await p.management.setBootDevice(peer.systemPath, 'pxe', { mode: 'legacy' }, ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).message).toContain('accepted boot override Pxe/Once/Legacy but kept Pxe/Once/UEFI');
      await p.management.setBootDevice(peer.systemPath, 'pxe', { mode: 'uefi' }, ctx);
    } finally {
      await p.close();
      await peer.close();
    }
  });
});
