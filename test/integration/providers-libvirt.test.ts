/**
 * The libvirt provider through real `virsh`: against libvirt's test driver served by a
 * real libvirtd (state kept across calls, read back over the peer's own connection), and
 * against a test driver node file for inventory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { DomainXml, LibvirtProvider } from '../../src/providers/libvirt/index.js';
import { ProviderError, type ProviderContext } from '../../src/providers/types.js';
import { randomBytes } from 'node:crypto';
import { libvirtDaemonUnavailable, libvirtQemuUnavailable, startLibvirtDaemon, TEST_DOMAINS, writeTestDriverNode, type LibvirtDaemonPeer } from '../support/peers/libvirt-peer.js';

const ctx: ProviderContext = { timeoutMs: 15_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };
const daemonUnavailable = libvirtDaemonUnavailable();
const [osDomain, deviceDomain] = TEST_DOMAINS as [(typeof TEST_DOMAINS)[0], (typeof TEST_DOMAINS)[0]];

describe.skipIf(daemonUnavailable !== undefined)('libvirt: test driver behind a real libvirtd', () => {
  let peer: LibvirtDaemonPeer;
  beforeAll(async () => {
    peer = await startLibvirtDaemon();
  });
  afterAll(async () => peer?.close());

  const provider = (): LibvirtProvider => new LibvirtProvider({ address: peer.uri });

  it('powers a domain on and off and reads the state libvirt holds', async () => {
    const p = provider();
    await p.power.setPowerState(osDomain.uuid, 'on', ctx);
    expect(peer.state(osDomain.name)).toBe('running');
    await p.power.setPowerState(osDomain.uuid, 'off', ctx);
    expect(peer.state(osDomain.name)).toBe('shut off');
    expect(await p.power.getPowerState(osDomain.name, ctx)).toBe('off');
  });

  it('rewrites <os><boot dev> for a domain ordered that way, keeping the disk as fallback', async () => {
    await provider().management.setBootDevice(osDomain.uuid, 'pxe', {}, ctx);
    const xml = peer.inactiveXml(osDomain.name);
    expect(xml).toMatch(/<boot dev='network'\/>\s*<boot dev='hd'\/>/);
    expect(xml).not.toMatch(/<boot order=/);
  });

  it('rewrites per-device <boot order> for a domain ordered that way, never mixing the two styles', async () => {
    await provider().management.setBootDevice(deviceDomain.uuid, 'pxe', { persistent: true }, ctx);
    const xml = peer.inactiveXml(deviceDomain.name);
    expect(xml).not.toMatch(/<boot dev=/);
    const summary = new DomainXml(xml).summary();
    expect(summary.firstBootDevice).toBe('pxe');
    expect(summary.bootSignature).toBe('interface:52:54:00:00:aa:02=1,disk:vda=2,interface:52:54:00:00:aa:03=3');
  });

  it('reboot power-cycles a running domain whose boot order changed (a reset would keep the old one)', async () => {
    const p = provider();
    await p.management.setBootDevice(osDomain.uuid, 'disk', {}, ctx);
    await p.power.setPowerState(osDomain.uuid, 'on', ctx);
    const firstId = peer.domId(osDomain.name);
    await p.power.reboot(osDomain.uuid, ctx); // nothing changed: a reset, same QEMU process
    expect(peer.domId(osDomain.name)).toBe(firstId);
    await p.management.setBootDevice(osDomain.uuid, 'pxe', {}, ctx);
    await p.power.reboot(osDomain.uuid, ctx); // changed: a new process picks up the new order
    expect(peer.domId(osDomain.name)).not.toBe(firstId);
    expect(peer.state(osDomain.name)).toBe('running');
  });

  it('accepts the firmware mode the domain has and refuses another', async () => {
    const p = provider();
    await p.management.setBootDevice(osDomain.uuid, 'disk', { mode: 'legacy' }, ctx);
    const err = (await p.management.setBootDevice(osDomain.uuid, 'disk', { mode: 'uefi' }, ctx).catch((e: unknown) => e)) as ProviderError;
    expect(err.failure).toBe('unsupported');
    expect(err.message).toMatch(/legacy firmware/);
  });

  it('an unknown domain is not-found; a dead daemon socket is unreachable', async () => {
    const missing = (await provider().power.getPowerState('no-such-domain', ctx).catch((e: unknown) => e)) as ProviderError;
    expect(missing.failure).toBe('not-found');
    const dead = new LibvirtProvider({ address: 'test+unix:///default?socket=/nonexistent/libvirt-sock' });
    const err = (await dead.power.getPowerState(osDomain.uuid, ctx).catch((e: unknown) => e)) as ProviderError;
    expect(err.failure).toBe('unreachable');
    expect(err.retryable).toBe(true);
  });
});

if (daemonUnavailable === undefined) {
  // The same test driver over libvirt's two remote transports: the daemon's UNIX socket, and
  // TCP (libvirtd --listen, no authentication, loopback only).
  for (const transport of ['unix', 'tcp'] as const) {
    let peer: LibvirtDaemonPeer;
    describeProviderConformance({
      name: `libvirt (test driver behind libvirtd, ${transport === 'unix' ? 'UNIX socket' : 'test+tcp://'})`,
      setup: async () => {
        peer = await startLibvirtDaemon(TEST_DOMAINS, { tcp: transport === 'tcp' });
        return {
          // Through the peer's virsh shim: it only lies while a `misbehave` switch is on.
          provider: new LibvirtProvider({ address: transport === 'tcp' ? peer.tcpUri! : peer.uri, options: { virsh: peer.virshShim } }),
          ref: osDomain.uuid,
          misbehave: peer,
          observe: {
            powerState: async () => (peer.state(osDomain.name) === 'running' ? 'on' : 'off'),
            bootDevice: async () => {
              const first = new DomainXml(peer.inactiveXml(osDomain.name)).summary().firstBootDevice;
              return first ? { device: first } : undefined;
            },
          },
          ctx,
        };
      },
      teardown: async () => peer.close(),
    });
  }
}

describe('libvirt: test driver node file (stateless inventory)', () => {
  let node: ReturnType<typeof writeTestDriverNode>;
  beforeAll(() => {
    node = writeTestDriverNode();
  });
  afterAll(() => node.close());

  it('lists domains with UUID, name, MACs and power state from dumpxml', async () => {
    const systems = await new LibvirtProvider({ address: node.uri }).management.listSystems!(ctx);
    expect(systems).toEqual([
      { ref: osDomain.uuid, name: osDomain.name, systemUuid: osDomain.uuid, macs: ['52:54:00:00:aa:01'], powerState: 'on' },
      { ref: deviceDomain.uuid, name: deviceDomain.name, systemUuid: deviceDomain.uuid, macs: ['52:54:00:00:aa:02', '52:54:00:00:aa:03'], powerState: 'on' },
    ]);
  });
});

const qemuUnavailable = libvirtQemuUnavailable();

describe.skipIf(qemuUnavailable !== undefined)('libvirt: a TCG guest under a real libvirtd (qemu:///system)', () => {
  let peer: LibvirtDaemonPeer;
  const name = `plinth-tcg-${randomBytes(3).toString('hex')}`;
  const uuid = '3c0ffee0-1111-4222-8333-944445555666';
  beforeAll(async () => {
    peer = await startLibvirtDaemon([], { qemu: true });
    peer.defineTcgDomain(name, uuid, '52:54:00:77:00:01');
  });
  afterAll(async () => peer?.close());

  const provider = (): LibvirtProvider => new LibvirtProvider({ address: peer.qemuUri });

  it('starts a software-emulated QEMU, network-boots it after a boot change, and stops it', async () => {
    const p = provider();
    await p.power.setPowerState(uuid, 'on', ctx);
    expect(await p.power.getPowerState(uuid, ctx)).toBe('on');
    const first = peer.qemuCommandLine(name)!;
    expect(first).toContain('-accel tcg');
    expect(first).not.toMatch(/"driver":"e1000"[^}]*"bootindex":1/);

    await p.management.setBootDevice(uuid, 'pxe', {}, ctx);
    await p.power.reboot(uuid, ctx); // a new QEMU process: the NIC now boots first
    expect(peer.qemuCommandLine(name)).toMatch(/"driver":"e1000"[^}]*"bootindex":1/);

    await p.power.setPowerState(uuid, 'soft-off', ctx); // ACPI request; no OS here to act on it
    await p.power.setPowerState(uuid, 'off', ctx);
    expect(await p.power.getPowerState(uuid, ctx)).toBe('off');
    expect(peer.qemuCommandLine(name)).toBeUndefined();
  });

  it('lists the guest with its UUID and MAC', async () => {
    const systems = await provider().management.listSystems!(ctx);
    expect(systems).toContainEqual({ ref: uuid, name, systemUuid: uuid, macs: ['52:54:00:77:00:01'], powerState: 'off' });
  });
});
