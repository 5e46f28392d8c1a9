/**
 * The Proxmox VE provider against a service replaying API answers shaped after Proxmox's
 * published schema (test/support/peers/proxmox-server.ts). No Proxmox emulator exists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { firstBootDevice, ProxmoxProvider } from '../../src/providers/proxmox/index.js';
import { ProviderError, type ProviderContext } from '../../src/providers/types.js';
import { startProxmoxPeer, type ProxmoxPeer } from '../support/peers/proxmox-server.js';

const ctx: ProviderContext = { timeoutMs: 5_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };

function provider(peer: ProxmoxPeer, overrides: { secret?: string; options?: Record<string, unknown> } = {}): ProxmoxProvider {
  return new ProxmoxProvider({ address: peer.url, username: peer.tokenId, password: overrides.secret ?? peer.secret, caCert: peer.caCert, options: overrides.options });
}

let conformancePeer: ProxmoxPeer;
describeProviderConformance({
  name: 'proxmox (recorded API shapes)',
  setup: async () => {
    conformancePeer = await startProxmoxPeer();
    const peer = conformancePeer;
    const vm = () => peer.vms.get(100)!;
    return {
      provider: provider(peer),
      ref: '100',
      withWrongCredentials: () => provider(peer, { secret: 'ffffffff-0000-4000-8000-000000000000' }),
      wrongPassword: 'ffffffff-0000-4000-8000-000000000000',
      misbehave: { ignorePower: (on) => conformancePeer.faults.ignorePower(on), alterBoot: (on) => conformancePeer.faults.alterBoot(on) },
      observe: {
        powerState: async () => (vm().status === 'running' ? 'on' : 'off'),
        bootDevice: async () => {
          const device = firstBootDevice(vm().config);
          return device ? { device } : undefined;
        },
        virtualMedia: async () => {
          const volume = String(vm().config['ide2']).split(',')[0]!;
          return volume === 'none' ? null : (peer.downloads.get(volume) ?? volume);
        },
      },
      ctx,
    };
  },
  teardown: async () => conformancePeer.close(),
});

describe('proxmox: against the recorded API shapes', () => {
  let peer: ProxmoxPeer;
  beforeAll(async () => {
    peer = await startProxmoxPeer();
  });
  afterAll(async () => peer.close());

  it('lists QEMU VMs (not templates, not containers) with SMBIOS UUID and netN MACs', async () => {
    const systems = await provider(peer).management.listSystems!(ctx);
    expect(systems).toEqual([
      { ref: '100', name: 'web-01', systemUuid: '6f9c8a4e-2b1d-4e3f-9a7c-1d2e3f4a5b6c', macs: ['bc:24:11:2f:3a:01'], powerState: 'on' },
      { ref: '101', name: 'db-01', systemUuid: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', macs: ['bc:24:11:2f:3a:02', 'bc:24:11:2f:3a:03'], powerState: 'off' },
    ]);
    const pve2 = await provider(peer, { options: { node: 'pve2' } }).management.listSystems!(ctx);
    expect(pve2.map((s) => s.ref)).toEqual(['101']);
  });

  it('rewrites a legacy boot value (cdn + bootdisk) into an order, network first', async () => {
    await provider(peer).management.setBootDevice('101', 'pxe', { mode: 'uefi' }, ctx);
    expect(peer.vms.get(101)!.config['boot']).toBe('order=net0;virtio0;net1');
  });

  it('a boot change on a running VM is pending until the next start: reboot stops and starts', async () => {
    const p = provider(peer);
    await p.power.setPowerState('100', 'on', ctx);
    await p.management.setBootDevice('100', 'pxe', {}, ctx);
    expect(peer.vms.get(100)!.running['boot']).not.toBe(peer.vms.get(100)!.config['boot']);
    const before = peer.tasks.length;
    await p.power.reboot('100', ctx);
    expect(peer.tasks.slice(before)).toEqual(['qmstop:100', 'qmstart:100']);
    expect(peer.vms.get(100)!.running['boot']).toBe('order=net0;scsi0;ide2');
    await p.power.reboot('100', ctx);
    expect(peer.tasks.at(-1)).toBe('qmreset:100');
  });

  it('refuses a firmware mode the VM does not have', async () => {
    const err = (await provider(peer).management.setBootDevice('100', 'disk', { mode: 'uefi' }, ctx).catch((e: unknown) => e)) as ProviderError;
    expect(err.failure).toBe('unsupported');
    expect(err.message).toMatch(/SeaBIOS/);
  });

  it('attaches an ISO volume as is, and downloads a URL into the ISO storage once', async () => {
    const p = provider(peer);
    await p.management.insertVirtualMedia!('100', 'local:iso/debian-12.5.0-amd64-netinst.iso', ctx);
    expect(peer.vms.get(100)!.config['ide2']).toBe('local:iso/debian-12.5.0-amd64-netinst.iso,media=cdrom');
    await p.management.insertVirtualMedia!('100', 'http://192.0.2.10/images/plinth-installer.iso', ctx);
    await p.management.insertVirtualMedia!('100', 'http://192.0.2.10/images/plinth-installer.iso', ctx);
    expect(peer.tasks.filter((t) => t.startsWith('download:'))).toEqual(['download:plinth-installer.iso']);
    expect(peer.vms.get(100)!.config['ide2']).toBe('local:iso/plinth-installer.iso,media=cdrom');
  });

  it('reports Proxmox errors with their message: unknown VM, parameter errors, bad token', async () => {
    const missing = (await provider(peer).power.getPowerState('4242', ctx).catch((e: unknown) => e)) as ProviderError;
    expect(missing.failure).toBe('not-found');
    const bad = (await provider(peer, { secret: 'nope-nope-nope' }).power.getPowerState('100', ctx).catch((e: unknown) => e)) as ProviderError;
    expect(bad.failure).toBe('auth');
    expect(bad.message).toContain('invalid token value!');
    expect(bad.message).not.toContain('nope-nope-nope');
  });
});
