import { describe, expect, it } from 'vitest';
import { countCpuList, countCpuMask, parseLscpu, type LscpuInfo } from './lscpu.js';
import { capture, shared } from './test-fixtures.js';

type Expected = Omit<LscpuInfo, never>;

/** Values read from each sample by hand. */
const SAMPLES: Array<[string, () => string, Expected]> = [
  [
    'hardware-samples/lscpu (EPYC 7451; its "CPU(s)" line says 1, the on-line list 0-95)',
    () => shared('hardware-samples/lscpu'),
    { architecture: 'x86_64', modelName: 'AMD: EPYC 7451 24-Core Processor', vendorId: 'AuthenticAMD', cpus: 1, onlineCpus: 96, sockets: 2, coresPerSocket: 24, threadsPerCore: 2 },
  ],
  [
    'hardware-samples/lscpux (same machine, -x)',
    () => shared('hardware-samples/lscpux'),
    { architecture: 'x86_64', modelName: 'AMD: EPYC 7451 24-Core Processor', vendorId: 'AuthenticAMD', cpus: 96, onlineCpus: 96, sockets: 2, coresPerSocket: 24, threadsPerCore: 2 },
  ],
  [
    'hardware-samples/lscpu-7302',
    () => shared('hardware-samples/lscpu-7302'),
    { architecture: 'x86_64', modelName: 'AMD EPYC 7302P 16-Core Processor', vendorId: 'AuthenticAMD', cpus: 32, onlineCpus: 32, sockets: 1, coresPerSocket: 16, threadsPerCore: 2 },
  ],
  [
    'hardware-samples/lscpu-7302x (an EPYC 7502P, -x)',
    () => shared('hardware-samples/lscpu-7302x'),
    { architecture: 'x86_64', modelName: 'AMD EPYC 7502P 32-Core Processor', vendorId: 'AuthenticAMD', cpus: 64, onlineCpus: 64, sockets: 1, coresPerSocket: 32, threadsPerCore: 2 },
  ],
  [
    'hardware-samples/lscpu-vm',
    () => shared('hardware-samples/lscpu-vm'),
    { architecture: 'x86_64', modelName: 'Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz', vendorId: 'GenuineIntel', cpus: 2, onlineCpus: 2, sockets: 1, coresPerSocket: 2, threadsPerCore: 1 },
  ],
  [
    'hardware-samples/lscpu-vmx',
    () => shared('hardware-samples/lscpu-vmx'),
    { architecture: 'x86_64', modelName: 'Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz', vendorId: 'GenuineIntel', cpus: 2, onlineCpus: 2, sockets: 1, coresPerSocket: 2, threadsPerCore: 1 },
  ],
  [
    'hardware-samples/lscpu_aarch64',
    () => shared('hardware-samples/lscpu_aarch64'),
    { architecture: 'aarch64', modelName: 'X-Gene', vendorId: 'APM', cpus: 8, onlineCpus: 8, sockets: 4, coresPerSocket: 2, threadsPerCore: 1 },
  ],
  [
    'hardware-samples/lscpux_aarch64 (mask without 0x)',
    () => shared('hardware-samples/lscpux_aarch64'),
    { architecture: 'aarch64', modelName: 'X-Gene', vendorId: 'APM', cpus: 8, onlineCpus: 8, sockets: 4, coresPerSocket: 2, threadsPerCore: 1 },
  ],
  [
    'hardware-samples/lscpu_ppc64le (no Vendor ID line)',
    () => shared('hardware-samples/lscpu_ppc64le'),
    { architecture: 'ppc64le', modelName: 'POWER9, altivec supported', vendorId: null, cpus: 144, onlineCpus: 144, sockets: 2, coresPerSocket: 18, threadsPerCore: 4 },
  ],
  [
    'hardware-samples/lscpux_ppc64le',
    () => shared('hardware-samples/lscpux_ppc64le'),
    { architecture: 'ppc64le', modelName: 'POWER9, altivec supported', vendorId: null, cpus: 144, onlineCpus: 144, sockets: 2, coresPerSocket: 18, threadsPerCore: 4 },
  ],
  [
    'host capture (util-linux 2.38, flat)',
    () => capture('host', 'lscpu.txt'),
    { architecture: 'x86_64', modelName: 'AMD EPYC', vendorId: 'AuthenticAMD', cpus: 2, onlineCpus: 2, sockets: 1, coresPerSocket: 2, threadsPerCore: 1 },
  ],
  [
    'qemu-bios capture (util-linux 2.38, indented tree on a console)',
    () => capture('qemu-bios', 'lscpu.txt'),
    { architecture: 'x86_64', modelName: 'QEMU Virtual CPU version 2.5+', vendorId: 'AuthenticAMD', cpus: 4, onlineCpus: 4, sockets: 2, coresPerSocket: 2, threadsPerCore: 1 },
  ],
  [
    'qemu-uefi capture',
    () => capture('qemu-uefi', 'lscpu.txt'),
    { architecture: 'x86_64', modelName: 'QEMU Virtual CPU version 2.5+', vendorId: 'AuthenticAMD', cpus: 2, onlineCpus: 2, sockets: 1, coresPerSocket: 2, threadsPerCore: 1 },
  ],
];

describe('parseLscpu', () => {
  it.each(SAMPLES)('%s', (_name, read, expected) => {
    expect(parseLscpu(read())).toEqual(expected);
  });

  it('does not take "BIOS Model name" for the model name', () => {
    expect(parseLscpu(capture('qemu-bios', 'lscpu.txt')).modelName).not.toContain('pc-i440fx');
  });

  it('reads "-" (counts lscpu cannot know) as unknown', () => {
    const info = parseLscpu('Architecture:        aarch64\nCPU(s):              4\nModel name:          -\nSocket(s):           -\nCore(s) per cluster: 4\n');
    expect(info).toMatchObject({ architecture: 'aarch64', cpus: 4, modelName: null, sockets: null, coresPerSocket: null });
  });
});

describe('countCpuList / countCpuMask', () => {
  it.each([
    ['0-5,48-53', 12],
    ['0,1', 2],
    ['7', 1],
    ['0-95', 96],
  ])('list %s has %d CPUs', (list, n) => expect(countCpuList(list)).toBe(n));

  it('rejects a malformed list', () => {
    expect(countCpuList('0-')).toBeNull();
    expect(countCpuList('5-1')).toBeNull();
  });

  it.each([
    ['0x3', 2],
    ['ff', 8],
    ['0xf0000000f', 8],
    ['0', 0],
  ])('mask %s has %d CPUs', (mask, n) => expect(countCpuMask(mask)).toBe(n));
});
