import { describe, expect, it } from 'vitest';
import { isoGrubConfig, isoKernelCmdline, staticNetworkArgs } from './iso.js';

describe("the installer ISO's command line", () => {
  it('carries a static address in the kernel format (ip=) and the card by MAC (BOOTIF=)', () => {
    expect(staticNetworkArgs({ address: '10.78.0.44', netmask: '255.255.255.0', gateway: '10.78.0.254', dns: ['10.78.0.53', '10.78.0.54', '10.78.0.55'], mac: '52:54:00:E2:10:44' })).toBe(
      'ip=10.78.0.44::10.78.0.254:255.255.255.0:::off:10.78.0.53:10.78.0.54 BOOTIF=01-52-54-00-e2-10-44',
    );
    // No gateway, no DNS, no MAC: empty fields, and the installer's first card.
    expect(staticNetworkArgs({ address: '10.0.0.9', netmask: '255.255.0.0' })).toBe('ip=10.0.0.9:::255.255.0.0:::off::');
    const cmdline = `${isoKernelCmdline('http://10.78.0.3:7708/', 'console=ttyS0')} ${staticNetworkArgs({ address: '10.78.0.44', netmask: '255.255.255.0', mac: '52:54:00:e2:10:44' })}`;
    expect(isoGrubConfig(cmdline)).toContain(
      "linux /plinth/vmlinuz 'plinth.url=http://10.78.0.3:7708' 'plinth.boot=vmedia' 'console=ttyS0' 'ip=10.78.0.44:::255.255.255.0:::off::' 'BOOTIF=01-52-54-00-e2-10-44'",
    );
  });
});
