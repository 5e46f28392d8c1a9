import type { Facts } from '../core/facts.js';
import { buildRenderContext, type OsSettings, type RenderContext, type RenderContextInput } from './context.js';
import type { TemplateKind } from './kinds.js';

/**
 * Two realistic machines for golden tests and validators: a small VM that gets everything by
 * DHCP, and a rack server with two NICs whose pool entry gives a static address, with SSH keys
 * for the default user and root. The token and ids are fixed so outputs are stable.
 */

export const SITE_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1bGxhYnlzaXRla2V5Zm9ycGxpbnRodGVzdHMx ops@example.com';
export const DEPLOY_KEY = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDdeploykeyforplinthgoldentests0123456789abcdefABCDEF alice@laptop';

/** Per-installer knobs: the iPXE templates need URLs only the operator knows; the server uses local mirrors. */
export const OS_PRESETS: Record<'dhcp' | 'static', Record<'debian' | 'fedora' | 'ubuntu', Partial<OsSettings>>> = {
  dhcp: {
    debian: {},
    fedora: { mirror: 'https://dl.fedoraproject.org/pub/fedora/linux/releases/40/Everything/x86_64/os' },
    ubuntu: {
      kernelUrl: 'http://10.0.2.2:7708/files/ubuntu-24.04/vmlinuz',
      initrdUrl: 'http://10.0.2.2:7708/files/ubuntu-24.04/initrd',
      isoUrl: 'https://releases.ubuntu.com/24.04/ubuntu-24.04.1-live-server-amd64.iso',
    },
  },
  static: {
    debian: { mirror: 'http://mirror.example.com/debian', suite: 'bookworm' },
    fedora: { mirror: 'http://mirror.example.com/fedora/linux/releases/40/Server/x86_64/os' },
    ubuntu: {
      mirror: 'http://mirror.example.com/ubuntu',
      kernelUrl: 'http://images.example.com/ubuntu/24.04/casper/vmlinuz',
      initrdUrl: 'http://images.example.com/ubuntu/24.04/casper/initrd',
      isoUrl: 'http://images.example.com/ubuntu/24.04/ubuntu-24.04.1-live-server-amd64.iso',
    },
  },
};

/** Which preset each golden render uses. */
export const PRESET_FOR: Record<TemplateKind, Record<string, 'debian' | 'fedora' | 'ubuntu'>> = {
  ipxe: { 'debian-installer': 'debian', anaconda: 'fedora', 'ubuntu-autoinstall': 'ubuntu' },
  'cloud-init': { 'user-data': 'debian', 'meta-data': 'debian', 'network-config': 'debian' },
  kickstart: { 'ks.cfg': 'fedora' },
  preseed: { 'preseed.cfg': 'debian' },
  autoinstall: { 'user-data': 'ubuntu', 'meta-data': 'ubuntu' },
  script: { default: 'debian' },
};

const vmFacts: Facts = {
  system: { uuid: '3f7a1c52-8e0b-4d1e-9a55-0c2b7d9e4f11', serial: null, assetTag: null, manufacturer: 'QEMU', productName: 'Standard PC (Q35 + ICH9, 2009)' },
  cpu: { architecture: 'x86_64', model: 'QEMU Virtual CPU version 2.5+', sockets: 1, cores: 2, threads: 2 },
  memory: { totalBytes: 4 * 2 ** 30, source: 'smbios' },
  disks: [{ name: 'vda', sizeBytes: 20 * 2 ** 30, model: null, serial: null, wwn: null, rotational: true }],
  nics: [{ name: 'ens3', mac: '52:54:00:3f:7a:01', driver: 'virtio_net', speedMbps: null, link: true, ipv4: ['10.0.2.15'], ipv6: [] }],
  firmware: { bootMode: 'uefi', vendor: 'EDK II', version: 'edk2-stable202302' },
  bmc: null,
  hw: [
    ['disk', 'vda', 'size', '21'],
    ['disk', 'vda', 'removable', '0'],
    ['network', 'ens3', 'serial', '52:54:00:3f:7a:01'],
  ],
};

const serverFacts: Facts = {
  system: { uuid: '4c4c4544-0042-3510-8052-b7c04f4b4a32', serial: 'B5RKJ2', assetTag: 'INV-00412', manufacturer: 'Dell Inc.', productName: 'PowerEdge R650' },
  cpu: { architecture: 'x86_64', model: 'Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz', sockets: 2, cores: 32, threads: 64 },
  memory: { totalBytes: 256 * 2 ** 30, source: 'smbios' },
  disks: [
    { name: 'sda', sizeBytes: 480_103_981_056, model: 'MZ7L3480HCHQ', serial: 'S6JMNE0T512345', wwn: '0x5002538f4231abcd', rotational: false },
    { name: 'sdb', sizeBytes: 3_840_755_982_336, model: 'MZ7L33T8HBLT', serial: 'S6JMNE0T598765', wwn: '0x5002538f4231ef01', rotational: false },
  ],
  nics: [
    { name: 'eno1', mac: 'b0:7b:25:d4:10:a0', driver: 'tg3', speedMbps: 1000, link: true, ipv4: ['192.0.2.150'], ipv6: [] },
    { name: 'eno2', mac: 'b0:7b:25:d4:10:a1', driver: 'tg3', speedMbps: null, link: false, ipv4: [], ipv6: [] },
  ],
  firmware: { bootMode: 'uefi', vendor: 'Dell Inc.', version: '1.10.2' },
  bmc: { ipv4: '198.51.100.20', mac: 'b0:7b:25:d4:10:a2' },
  hw: [
    ['disk', 'sda', 'removable', '0'],
    ['disk', 'sdb', 'removable', '0'],
  ],
};

export function dhcpInput(os: Partial<OsSettings> = {}): RenderContextInput {
  return {
    machine: {
      id: '0b6f5a4e-2c1d-4e8f-9a7b-3c5d7e9f1a2b',
      name: 'brisk-heron-3f7a',
      identity: { systemUuid: vmFacts.system.uuid, serial: null, manufacturer: 'QEMU', productName: vmFacts.system.productName, assetTag: null, macs: ['52:54:00:3f:7a:01'] },
      tags: {},
      facts: vmFacts,
      owner: null,
    },
    profile: null,
    vars: {},
    run: { id: '6d2e8c1a-5b7f-4a3e-8d9c-1f0e2b4a6c8d', kind: 'deploy' },
    controller: { baseUrl: 'http://10.0.2.2:7708' },
    token: 'plrun_dhcpTESTtokenNOTsecret0123456789abcdefgh',
    ssh: { siteKeys: [SITE_KEY] },
    os,
  };
}

export function staticInput(os: Partial<OsSettings> = {}): RenderContextInput {
  return {
    machine: {
      id: '9e1d3c5b-7a2f-4b6e-8c0d-2e4f6a8b0c1d',
      name: 'steady-osprey-91c2',
      identity: { systemUuid: serverFacts.system.uuid, serial: 'B5RKJ2', manufacturer: 'Dell Inc.', productName: 'PowerEdge R650', assetTag: 'INV-00412', macs: ['b0:7b:25:d4:10:a0', 'b0:7b:25:d4:10:a1'] },
      tags: { rack: 'r12', role: 'web' },
      facts: serverFacts,
      owner: 'team-web',
    },
    profile: 'web',
    vars: { hostname: 'web01.example.com', ip: '192.0.2.10', netmask: '255.255.255.0', gateway: '192.0.2.1', dns: '192.0.2.53,192.0.2.54', rack: 'r12' },
    run: { id: 'a4c6e8f0-1b3d-4f5a-9c7e-0d2f4b6a8c9e', kind: 'deploy' },
    controller: { baseUrl: 'https://plinth.example.com' },
    token: 'plrun_staticTESTtokenNOTsecret0123456789abcdef',
    ssh: { siteKeys: [SITE_KEY], deployKeys: [DEPLOY_KEY, SITE_KEY], rootLogin: true },
    os: { timezone: 'Europe/Paris', packages: ['vim', 'htop'], ...os },
  };
}

export type FixtureName = 'dhcp' | 'static';
export const FIXTURES: readonly FixtureName[] = ['dhcp', 'static'];

/** The context a golden render of kind/name uses for a fixture machine. */
export function fixtureContext(fixture: FixtureName, kind: TemplateKind, name: string): RenderContext {
  const os = OS_PRESETS[fixture][PRESET_FOR[kind][name] ?? 'debian'];
  return buildRenderContext(fixture === 'dhcp' ? dhcpInput(os) : staticInput(os));
}
