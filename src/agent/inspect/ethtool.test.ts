import { describe, expect, it } from 'vitest';
import { parseEthtool, parseEthtoolDriver } from './ethtool.js';
import { capture, shared } from './test-fixtures.js';

describe('parseEthtool', () => {
  it('reads a virtio card given a speed (qemu-bios eth0: speed=10000,duplex=full)', () => {
    expect(parseEthtool(capture('qemu-bios', 'ethtool-eth0.txt'))).toEqual({ speedMbps: 10000, duplex: 'full', autoNegotiation: 'off', linkDetected: true });
  });

  it('reads an e1000 with its multi-line link modes and message level (qemu-bios eth1)', () => {
    expect(parseEthtool(capture('qemu-bios', 'ethtool-eth1.txt'))).toEqual({ speedMbps: 1000, duplex: 'full', autoNegotiation: 'on', linkDetected: true });
  });

  it('reads "Speed: Unknown!" and "Duplex: Unknown! (255)" as unknown (host virtio)', () => {
    expect(parseEthtool(capture('host', 'ethtool-eth0.txt'))).toEqual({ speedMbps: null, duplex: null, autoNegotiation: 'off', linkDetected: true });
  });

  it('finds nothing in output that is not link settings', () => {
    expect(parseEthtool(shared('hardware-samples/ethtool_k'))).toEqual({ speedMbps: null, duplex: null, autoNegotiation: null, linkDetected: null });
    expect(parseEthtool(capture('host', 'ethtool-ifb0.txt'))).toEqual({ speedMbps: null, duplex: null, autoNegotiation: null, linkDetected: null });
  });

  it('reads a link that is down', () => {
    expect(parseEthtool('Settings for eno2:\n\tSpeed: Unknown!\n\tDuplex: Unknown! (255)\n\tLink detected: no\n').linkDetected).toBe(false);
  });
});

describe('parseEthtoolDriver', () => {
  it('reads virtio_net and its PCI address (qemu-bios eth0)', () => {
    expect(parseEthtoolDriver(capture('qemu-bios', 'ethtool-i-eth0.txt'))).toEqual({ driver: 'virtio_net', driverVersion: '1.0.0', firmwareVersion: null, busInfo: '0000:00:06.0' });
  });

  it('reads e1000 (qemu-bios eth1)', () => {
    expect(parseEthtoolDriver(capture('qemu-bios', 'ethtool-i-eth1.txt'))).toMatchObject({ driver: 'e1000', driverVersion: '6.1.0-56-amd64', busInfo: '0000:00:07.0' });
  });

  it('reads the host card', () => {
    expect(parseEthtoolDriver(capture('host', 'ethtool-i-eth0.txt'))).toMatchObject({ driver: 'virtio_net', busInfo: '0000:00:03.0' });
  });
});
