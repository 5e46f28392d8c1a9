import { describe, expect, it } from 'vitest';
import { channelHasAccessSettings, parseIpmiLanPrint } from './ipmitool.js';
import { capture, shared } from './test-fixtures.js';

describe('parseIpmiLanPrint', () => {
  const lan = parseIpmiLanPrint(shared('hardware-samples/ipmi_lan_info'));

  it('reads the address and MAC of a real BMC (hardware-samples/ipmi_lan_info)', () => {
    expect(lan).toMatchObject({
      ipAddress: '10.151.68.13',
      macAddress: '00:30:48:f4:4d:83',
      ipAddressSource: 'Static Address',
      subnetMask: '255.255.255.0',
      defaultGateway: '10.151.68.3',
    });
  });

  it("names entries as eDeploy's hardware-detect did", () => {
    expect(lan.entries).toContainEqual(['ip-address', '10.151.68.13']);
    expect(lan.entries).toContainEqual(['mac-address', '00:30:48:f4:4d:83']);
    expect(lan.entries).toContainEqual(['802.1q-vlan-id', 'Disabled']);
    expect(lan.entries).toContainEqual(['snmp-community-string', 'AMI']);
    expect(lan.entries).toContainEqual(['auth-type-enable', 'Callback : MD2 MD5 OEM']);
  });

  it('skips the continuation lines of multi-line values', () => {
    expect(lan.entries.map(([key]) => key)).not.toContain('');
    expect(lan.entries.some(([, value]) => value.startsWith('User'))).toBe(false);
    // 19 lines start at the left margin with a key; the continuations and the cipher legend do not.
    expect(lan.entries).toHaveLength(19);
    expect(lan.entries[18]).toEqual(['cipher-suite-priv-max', 'aaaaXXaaaXXaaXX']);
  });

  it('finds nothing in the errors of a BMC that does not implement LAN parameters (qemu-bios)', () => {
    expect(parseIpmiLanPrint(capture('qemu-bios', 'ipmitool-lan.txt'))).toMatchObject({ ipAddress: null, macAddress: null });
  });
});

describe('channelHasAccessSettings', () => {
  it('is true for a channel with volatile settings', () => {
    const info = 'Channel 0x1 info:\n  Channel Medium Type   : 802.3 LAN\n  Volatile(active) Settings\n    Alerting            : enabled\n  Non-Volatile Settings\n';
    expect(channelHasAccessSettings(info)).toBe(true);
  });

  it('is false for an IPMB channel or an error', () => {
    expect(channelHasAccessSettings('Channel 0x0 info:\n  Channel Medium Type   : IPMB (I2C)\n')).toBe(false);
    expect(channelHasAccessSettings('Get Channel Info command failed: Invalid command')).toBe(false);
  });
});
