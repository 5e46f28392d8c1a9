import { describe, expect, it } from 'vitest';
import { DomainXml } from './domain-xml.js';

// Shaped like `virsh dumpxml` output of a QEMU/KVM domain (libvirt 9).
const OS_STYLE = `<domain type='kvm'>
  <name>node-1</name>
  <uuid>0F3E7C1A-2B4D-4E6F-8A9B-0C1D2E3F4A5B</uuid>
  <memory unit='KiB'>2097152</memory>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
    <boot dev='cdrom'/>
  </os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/node-1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <interface type='network'><mac address='52:54:00:12:34:56'/><source network='default'/><model type='virtio'/></interface>
    <interface type='bridge'><mac address='52:54:00:12:34:57'/><source bridge='br0'/></interface>
    <!-- a comment survives -->
  </devices>
</domain>`;

const DEVICE_STYLE = `<domain type='kvm'>
  <name>node-2</name>
  <uuid>1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d</uuid>
  <os firmware='efi'><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><source file='/img/a.qcow2'/><target dev='vda' bus='virtio'/><boot order='1'/></disk>
    <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>
    <interface type='network'><mac address='52:54:00:ab:cd:ef'/><source network='default'/><boot order='2'/></interface>
  </devices>
</domain>`;

describe('DomainXml', () => {
  it('summarises identity, MACs, boot style and firmware', () => {
    expect(new DomainXml(OS_STYLE).summary()).toEqual({
      name: 'node-1',
      uuid: '0f3e7c1a-2b4d-4e6f-8a9b-0c1d2e3f4a5b',
      macs: ['52:54:00:12:34:56', '52:54:00:12:34:57'],
      bootStyle: 'os',
      firstBootDevice: 'disk',
      firmware: 'legacy',
      bootSignature: 'hd,cdrom',
    });
    expect(new DomainXml(DEVICE_STYLE).summary()).toMatchObject({ bootStyle: 'device', firstBootDevice: 'disk', firmware: 'uefi' });
  });

  it('puts network first in <os>, keeping the other entries behind it and the rest of the document intact', () => {
    const d = new DomainXml(OS_STYLE);
    d.setFirstBootDevice('pxe');
    const xml = d.toXml();
    expect(new DomainXml(xml).summary().bootSignature).toBe('network,hd,cdrom');
    expect(xml).toContain('<!-- a comment survives -->');
    expect(xml).toContain('machine="pc-q35-7.2"');
  });

  it('renumbers per-device boot orders without adding <os><boot>', () => {
    const d = new DomainXml(DEVICE_STYLE);
    d.setFirstBootDevice('cd');
    const xml = d.toXml();
    const s = new DomainXml(xml).summary();
    expect(s.firstBootDevice).toBe('cd');
    expect(s.bootSignature).toBe('disk:sda=1,disk:vda=2,interface:52:54:00:ab:cd:ef=3');
    expect(xml).not.toMatch(/<boot dev=/);
  });

  it('refuses a device kind the domain does not have (per-device style)', () => {
    const d = new DomainXml(DEVICE_STYLE.replace(/<interface[\s\S]*?<\/interface>/, ''));
    expect(() => d.setFirstBootDevice('pxe')).toThrow(/no network device/);
  });
});
