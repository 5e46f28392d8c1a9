import { describe, expect, it } from 'vitest';
import { parseCpuinfo } from './cpuinfo.js';
import { parseMemTotalBytes } from './meminfo.js';
import { capture } from './test-fixtures.js';

describe('parseMemTotalBytes', () => {
  it.each([
    ['host', 24682416],
    ['qemu-bios', 1497524],
    ['qemu-uefi', 18926812],
  ] as const)('reads MemTotal of %s (%d kB) in bytes', (machine, kib) => {
    expect(parseMemTotalBytes(capture(machine, 'meminfo.txt'))).toBe(kib * 1024);
  });

  it('is null without a MemTotal line', () => {
    expect(parseMemTotalBytes('MemFree: 12 kB\n')).toBeNull();
  });
});

describe('parseCpuinfo', () => {
  it('counts processors and reads the x86 model name (host)', () => {
    expect(parseCpuinfo(capture('host', 'cpuinfo.txt'))).toEqual({ logicalCpus: 2, modelName: 'AMD EPYC', vendorId: 'AuthenticAMD' });
  });

  it('has no model name on aarch64', () => {
    const text = 'processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n';
    expect(parseCpuinfo(text)).toEqual({ logicalCpus: 2, modelName: null, vendorId: null });
  });
});
