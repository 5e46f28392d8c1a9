import { describe, expect, it } from 'vitest';
import type { HwTuple } from '../../core/facts.js';
import { assembleFacts, lshwProductName, lshwSpeed, type InspectionInputs } from './assemble.js';
import { parseDmidecode } from './dmidecode.js';
import { parseEthtool, parseEthtoolDriver } from './ethtool.js';
import { parseIpAddr } from './ip-addr.js';
import { parseIpmiLanPrint } from './ipmitool.js';
import { parseLscpu } from './lscpu.js';
import { parseLsblk } from './lsblk.js';
import { parseLspci } from './lspci.js';
import { parseMemTotalBytes } from './meminfo.js';
import { capture, shared } from './test-fixtures.js';

type Machine = 'host' | 'qemu-bios' | 'qemu-uefi';

/** Inputs as the collector would build them from one machine's captures. */
function inputsFrom(machine: Machine, overrides: Partial<InspectionInputs> = {}): InspectionInputs {
  const read = (file: string): string => capture(machine, file);
  const dmi = machine === 'host' ? null : parseDmidecode(read('dmidecode.txt'));
  return {
    dmi,
    lscpu: parseLscpu(read('lscpu.txt')),
    cpuinfo: null,
    machineArchitecture: null,
    memTotalBytes: parseMemTotalBytes(read('meminfo.txt')),
    blockDevices: parseLsblk(read('lsblk.json')),
    nics: parseIpAddr(read('ip-addr-details.json')).map((iface) => ({
      iface,
      ethtool: parseEthtool(read(`ethtool-${iface.name}.txt`)),
      driver: parseEthtoolDriver(read(`ethtool-i-${iface.name}.txt`)),
      carrier: null,
      sysfsDriver: null,
    })),
    pciDevices: parseLspci(read('lspci.txt')),
    ipmi: null,
    uefi: machine === 'qemu-uefi',
    ...overrides,
  };
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe('assembleFacts: QEMU VM, SeaBIOS, -m 1536, 2 sockets x 2 cores (qemu-bios)', () => {
  const facts = assembleFacts(inputsFrom('qemu-bios'));

  it('reports the identity given with -smbios', () => {
    expect(facts.system).toEqual({
      uuid: '5a3f0c2e-8b1d-4e6a-9c7f-1d2e3f405162',
      serial: 'PLN-0001-SN',
      assetTag: 'ASSET-0042',
      manufacturer: 'Plinth Test Systems',
      productName: 'Plinth Lab Node',
    });
  });

  it('reports installed memory from SMBIOS (1536 MiB), not MemTotal (1497524 kB)', () => {
    expect(facts.memory).toEqual({ totalBytes: 1536 * MiB, source: 'smbios' });
  });

  it('counts sockets, cores and threads across the machine', () => {
    expect(facts.cpu).toEqual({ architecture: 'x86_64', model: 'QEMU Virtual CPU version 2.5+', sockets: 2, cores: 4, threads: 4 });
  });

  it('lists the disks but not the CD-ROM', () => {
    expect(facts.disks).toEqual([
      { name: 'sda', sizeBytes: 322122547200, model: 'ST300MM0008', serial: null, wwn: null, rotational: true },
      { name: 'vda', sizeBytes: 8589934592, model: null, serial: null, wwn: null, rotational: true },
      { name: 'vdb', sizeBytes: 21474836480, model: null, serial: null, wwn: null, rotational: true },
    ]);
  });

  it('lists both cards with driver, speed and link', () => {
    expect(facts.nics).toEqual([
      { name: 'eth0', mac: '52:54:00:12:34:01', driver: 'virtio_net', speedMbps: 10000, link: true, ipv4: ['10.0.2.15'], ipv6: ['fec0::5054:ff:fe12:3401'] },
      { name: 'eth1', mac: '52:54:00:12:34:02', driver: 'e1000', speedMbps: 1000, link: true, ipv4: ['10.0.3.15'], ipv6: ['fec0::5054:ff:fe12:3402'] },
    ]);
  });

  it('reports legacy boot and the BIOS from type 0; no BMC without LAN settings', () => {
    expect(facts.firmware).toEqual({ bootMode: 'bios', vendor: 'PlinthLab', version: '1.2.3' });
    expect(facts.bmc).toBeNull();
  });

  it('emits only string 4-tuples', () => {
    for (const tuple of facts.hw) {
      expect(tuple).toHaveLength(4);
      for (const part of tuple) expect(typeof part).toBe('string');
    }
  });

  it("names system, firmware, cpu and memory facts as eDeploy's hardware-detect did", () => {
    expect(facts.hw).toEqual(
      expect.arrayContaining([
        ['system', 'product', 'serial', 'PLN-0001-SN'],
        // lshw appends the SKU, empty here ("SKU Number: Not Specified").
        ['system', 'product', 'name', 'Plinth Lab Node ()'],
        ['system', 'product', 'vendor', 'Plinth Test Systems'],
        ['system', 'product', 'version', 'pc-i440fx-7.2'],
        ['system', 'product', 'uuid', '5a3f0c2e-8b1d-4e6a-9c7f-1d2e3f405162'],
        ['system', 'motherboard', 'serial', 'BRD-77'],
        ['system', 'chassis', 'asset_tag', 'ASSET-0042'],
        ['firmware', 'bios', 'vendor', 'PlinthLab'],
        ['firmware', 'bios', 'version', '1.2.3'],
        ['firmware', 'boot', 'mode', 'bios'],
        ['cpu', 'physical', 'number', '2'],
        ['cpu', 'logical', 'number', '4'],
        ['cpu', 'physical_0', 'physid', '400'],
        ['cpu', 'physical_1', 'physid', '401'],
        ['cpu', 'physical_1', 'cores', '2'],
        ['cpu', 'physical_1', 'frequency', '2000000000'],
        ['cpu', 'physical_0', 'vendor', 'Advanced Micro Devices [AMD]'],
        ['memory', 'total', 'size', String(1536 * MiB)],
        ['memory', 'bank:0', 'size', String(1536 * MiB)],
        ['memory', 'bank:0', 'slot', 'DIMM 0'],
        ['memory', 'banks', 'count', '1'],
      ]),
    );
  });

  it('gives disk sizes in decimal GB rounded down, as hardware-detect did', () => {
    const sizes = facts.hw.filter(([c, , a]) => c === 'disk' && a === 'size');
    expect(sizes).toEqual([
      ['disk', 'sda', 'size', '322'],
      ['disk', 'vda', 'size', '8'],
      ['disk', 'vdb', 'size', '21'],
    ]);
    expect(facts.hw).toContainEqual(['disk', 'logical', 'count', '3']);
    expect(facts.hw).toContainEqual(['disk', 'sda', 'vendor', 'SEAGATE']);
    expect(facts.hw).toContainEqual(['disk', 'vda', 'vendor', '0x1af4']);
    expect(facts.hw.some(([c, n]) => c === 'disk' && n === 'sr0')).toBe(false);
  });

  it('describes each card as lshw did: MAC as serial, speed, IPv4 network, link, driver, PCI names', () => {
    const eth1 = facts.hw.filter(([c, n]) => c === 'network' && n === 'eth1');
    expect(eth1).toEqual(
      expect.arrayContaining([
        ['network', 'eth1', 'serial', '52:54:00:12:34:02'],
        ['network', 'eth1', 'vendor', 'Intel Corporation'],
        ['network', 'eth1', 'product', '82540EM Gigabit Ethernet Controller'],
        ['network', 'eth1', 'businfo', 'pci@0000:00:07.0'],
        ['network', 'eth1', 'size', '1000000000'],
        ['network', 'eth1', 'speed', '1Gbit/s'],
        ['network', 'eth1', 'ipv4', '10.0.3.15'],
        ['network', 'eth1', 'ipv4-netmask', '255.255.255.0'],
        ['network', 'eth1', 'ipv4-cidr', '24'],
        ['network', 'eth1', 'ipv4-network', '10.0.3.0'],
        ['network', 'eth1', 'link', 'yes'],
        ['network', 'eth1', 'driver', 'e1000'],
        ['network', 'eth1', 'duplex', 'full'],
        ['network', 'eth1', 'autonegotiation', 'on'],
      ]),
    );
    expect(facts.hw).toContainEqual(['network', 'eth0', 'speed', '10Gbit/s']);
  });
});

describe('assembleFacts: QEMU VM, OVMF, placeholder SMBIOS strings, 18.5 GiB (qemu-uefi)', () => {
  const facts = assembleFacts(inputsFrom('qemu-uefi'));

  it('passes junk identity values through as reported; the controller filters them', () => {
    expect(facts.system).toEqual({
      uuid: '03000200-0400-0500-0006-000700080009',
      serial: 'To Be Filled By O.E.M.',
      assetTag: 'Default string',
      manufacturer: 'To Be Filled By O.E.M.',
      productName: 'To Be Filled By O.E.M.',
    });
    expect(facts.hw).toContainEqual(['system', 'product', 'serial', 'To Be Filled By O.E.M.']);
  });

  it('sums the SMBIOS DIMMs (16 GB + 2560 MB) instead of taking MemTotal (18926812 kB)', () => {
    expect(facts.memory).toEqual({ totalBytes: 16 * GiB + 2560 * MiB, source: 'smbios' });
    expect(facts.memory.totalBytes).not.toBe(18926812 * 1024);
    expect(facts.hw).toContainEqual(['memory', 'bank:0', 'size', String(16 * GiB)]);
    expect(facts.hw).toContainEqual(['memory', 'bank:1', 'size', String(2560 * MiB)]);
  });

  it('reports UEFI boot and the OVMF firmware', () => {
    expect(facts.firmware).toEqual({ bootMode: 'uefi', vendor: 'EFI Development Kit II / OVMF', version: '0.0.0' });
    expect(facts.hw).toContainEqual(['firmware', 'boot', 'mode', 'uefi']);
  });

  it('keeps the removable USB disk and marks it in the hw list', () => {
    expect(facts.disks.map((d) => d.name)).toEqual(['sda', 'sdb', 'vda', 'vdb']);
    expect(facts.hw).toContainEqual(['disk', 'sdb', 'removable', '1']);
    expect(facts.hw).toContainEqual(['disk', 'sda', 'removable', '0']);
    expect(facts.hw).toContainEqual(['disk', 'sdb', 'size', '2']);
  });
});

describe('assembleFacts: a machine without SMBIOS (host)', () => {
  const facts = assembleFacts(inputsFrom('host'));

  it('falls back to MemTotal and says so', () => {
    expect(facts.memory).toEqual({ totalBytes: 24682416 * 1024, source: 'meminfo' });
  });

  it('knows no identity and no firmware vendor, and still the rest', () => {
    expect(facts.system).toEqual({ uuid: null, serial: null, assetTag: null, manufacturer: null, productName: null });
    expect(facts.firmware).toEqual({ bootMode: 'bios', vendor: null, version: null });
    expect(facts.cpu).toEqual({ architecture: 'x86_64', model: 'AMD EPYC', sockets: 1, cores: 2, threads: 2 });
    expect(facts.nics.map((n) => [n.name, n.speedMbps, n.link])).toEqual([['eth0', null, true]]);
    expect(facts.hw.some(([c, n]) => c === 'system' && n === 'product')).toBe(false);
    expect(facts.hw.some(([, , a]) => a === 'speed')).toBe(false);
  });

  it('emits cpu physical_N entries from lscpu when SMBIOS lists no processor', () => {
    expect(facts.hw).toContainEqual(['cpu', 'physical_0', 'product', 'AMD EPYC']);
    expect(facts.hw).toContainEqual(['cpu', 'physical', 'number', '1']);
  });
});

describe('assembleFacts: CPU counts from lscpu', () => {
  it('trusts the on-line CPU list over a wrong "CPU(s)" line (hardware-samples/lscpu)', () => {
    const facts = assembleFacts(inputsFrom('host', { lscpu: parseLscpu(shared('hardware-samples/lscpu')) }));
    expect(facts.cpu).toEqual({ architecture: 'x86_64', model: 'AMD: EPYC 7451 24-Core Processor', sockets: 2, cores: 48, threads: 96 });
  });

  it('counts a POWER9 (hardware-samples/lscpu_ppc64le)', () => {
    const facts = assembleFacts(inputsFrom('host', { lscpu: parseLscpu(shared('hardware-samples/lscpu_ppc64le')) }));
    expect(facts.cpu).toEqual({ architecture: 'ppc64le', model: 'POWER9, altivec supported', sockets: 2, cores: 36, threads: 144 });
  });
});

describe('assembleFacts: BMC', () => {
  it('reports the BMC address, MAC and channel from ipmitool (hardware-samples/ipmi_lan_info)', () => {
    const facts = assembleFacts(inputsFrom('qemu-bios', { ipmi: { lan: parseIpmiLanPrint(shared('hardware-samples/ipmi_lan_info')), channel: 1 } }));
    expect(facts.bmc).toEqual({ ipv4: '10.151.68.13', mac: '00:30:48:f4:4d:83' });
    expect(facts.hw).toEqual(
      expect.arrayContaining([
        ['system', 'ipmi', 'channel', '1'],
        ['ipmi', 'lan', 'ip-address', '10.151.68.13'],
        ['ipmi', 'lan', 'mac-address', '00:30:48:f4:4d:83'],
        ['ipmi', 'lan', 'subnet-mask', '255.255.255.0'],
      ]),
    );
  });

  it('reports an unconfigured BMC address (0.0.0.0) as unknown, and the hw list as printed', () => {
    const lan = parseIpmiLanPrint(shared('hardware-samples/ipmi_lan_info').replace('10.151.68.13', '0.0.0.0'));
    const facts = assembleFacts(inputsFrom('qemu-bios', { ipmi: { lan, channel: null } }));
    expect(facts.bmc).toEqual({ ipv4: null, mac: '00:30:48:f4:4d:83' });
    expect(facts.hw).toContainEqual(['ipmi', 'lan', 'ip-address', '0.0.0.0']);
    expect(facts.hw.some(([c, n]) => c === 'system' && n === 'ipmi')).toBe(false);
  });
});

describe('lshwProductName', () => {
  it('appends the SKU as lshw did (values from the eDeploy .hw fixtures)', () => {
    expect(lshwProductName('ProLiant DL360p Gen8', '654081-B21')).toBe('ProLiant DL360p Gen8 (654081-B21)');
    expect(lshwProductName('edeploy_test_vm', 'Not Specified')).toBe('edeploy_test_vm ()');
    expect(lshwProductName('PowerEdge M520', 'SKU=NotProvided;ModelName=PowerEdge M520')).toBe('PowerEdge M520 (SKU=NotProvided;ModelName=PowerEdge M520)');
  });

  it('leaves the name alone when the table has no SKU field (SMBIOS < 2.4)', () => {
    expect(lshwProductName('OldBox', null)).toBe('OldBox');
    expect(lshwProductName(null, 'X')).toBeNull();
  });
});

describe('lshwSpeed', () => {
  it.each([
    [10, '10Mbit/s'],
    [100, '100Mbit/s'],
    [1000, '1Gbit/s'],
    [2500, '2500Mbit/s'],
    [25000, '25Gbit/s'],
  ])('%d Mb/s is %s', (mbps, text) => expect(lshwSpeed(mbps)).toBe(text));
});

// ---------------------------------------------------------------------------------------
// eDeploy compatibility: the fixture specs must match a machine with that hardware.

type Spec = [string, string, string, string];

const specs = (name: string): Spec[] => JSON.parse(shared(`edeploy-config/${name}.specs.json`)) as Spec[];

function ipv4(text: string): number | null {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return null;
  return parts.reduce((n, p) => n * 256 + p, 0);
}

/** The spec functions these fixtures use (gt, ge, lt, le, network), compared as eDeploy does. */
function valueMatches(spec: string, value: string): boolean {
  const call = /^(gt|ge|lt|le|network)\((.*)\)$/.exec(spec);
  if (!call) return spec === value;
  const [, fn, arg] = call;
  if (fn === 'network') {
    const [net, bits] = arg!.split('/');
    const a = ipv4(value);
    const n = ipv4(net!);
    if (a === null || n === null) return false;
    const size = 2 ** (32 - Number(bits));
    return Math.floor(a / size) === Math.floor(n / size);
  }
  const v = Number(value);
  const limit = Number(arg);
  if (Number.isNaN(v)) return false;
  return fn === 'gt' ? v > limit : fn === 'ge' ? v >= limit : fn === 'lt' ? v < limit : v <= limit;
}

const isVariable = (s: string): boolean => s.startsWith('$');

/**
 * A minimal eDeploy matcher for the test: every spec line must match a distinct hardware
 * line, `$var` binds consistently across lines, with backtracking. Returns the bindings
 * or null.
 */
function matchSpecs(specLines: Spec[], hw: Array<[string, string, string, string]>): Record<string, string> | null {
  const used = new Set<number>();
  const search = (i: number, bindings: Record<string, string>): Record<string, string> | null => {
    if (i === specLines.length) return bindings;
    const [category, name, attribute, value] = specLines[i]!;
    for (let k = 0; k < hw.length; k++) {
      if (used.has(k)) continue;
      const [hc, hn, ha, hv] = hw[k]!;
      if (hc !== category || ha !== attribute) continue;
      const next = { ...bindings };
      if (isVariable(name)) {
        if (next[name] !== undefined && next[name] !== hn) continue;
        next[name] = hn;
      } else if (name !== hn) continue;
      if (isVariable(value)) {
        if (next[value] !== undefined && next[value] !== hv) continue;
        next[value] = hv;
      } else if (!valueMatches(value, hv)) continue;
      used.add(k);
      const found = search(i + 1, next);
      if (found) return found;
      used.delete(k);
    }
    return null;
  };
  return search(0, {});
}

describe('eDeploy specs from the fixtures against assembled facts', () => {
  const bios = assembleFacts(inputsFrom('qemu-bios')).hw;
  const uefi = assembleFacts(inputsFrom('qemu-uefi')).hw;

  it('the test matcher matches kvm-test.specs against the eDeploy VM it was written for', () => {
    const hw = JSON.parse(shared('edeploy-hw/edeploy_test_vm-kvm-52-54-12-34-00-03.hw.json')) as Array<[string, string, string, unknown]>;
    const asStrings = hw.map(([c, n, a, v]) => [c, n, a, String(v)] as [string, string, string, string]);
    expect(matchSpecs(specs('kvm-test'), asStrings)).not.toBeNull();
  });

  it('vm.specs matches the two-disk VM and binds the CPU count', () => {
    const bindings = matchSpecs(specs('vm'), bios);
    expect(bindings).toMatchObject({ $nbcpu: '4', $disk: 'sda', $size: '322', $disk2: 'vda', $size2: '8' });
  });

  it('devstack.specs (memory total ge(2000000000)) matches the 18.5 GiB VM, not the 1.5 GiB one', () => {
    expect(matchSpecs(specs('devstack'), uefi)).toMatchObject({ $mac: '52:54:00:12:34:01' });
    expect(matchSpecs(specs('devstack'), bios)).toBeNull();
  });

  it("kvm-test.specs, with this VM's vendor and name, matches it through network(), serial and link lines", () => {
    const adapted = specs('kvm-test')
      .filter(([, name]) => name !== '$eth-mgmt' && name !== 'ipmi-fake')
      .map(([c, n, a, v]): Spec => (c === 'system' && a === 'vendor' ? [c, n, a, 'Plinth Test Systems'] : c === 'system' && a === 'name' ? [c, n, a, 'Plinth Lab Node ()'] : [c, n, a, v]));
    expect(matchSpecs(adapted, bios)).toMatchObject({ $eth: 'eth0', $mac: '52:54:00:12:34:01', '$eth-io': 'eth1', '$mac-io': '52:54:00:12:34:02' });
  });

  it('a spec on the BMC channel and address matches when ipmitool answered', () => {
    const withBmc = assembleFacts(inputsFrom('qemu-bios', { ipmi: { lan: parseIpmiLanPrint(shared('hardware-samples/ipmi_lan_info')), channel: 2 } })).hw;
    const spec: Spec[] = [
      ['system', 'ipmi', 'channel', '$ipmi-channel'],
      ['ipmi', 'lan', 'ip-address', 'network(10.151.68.0/24)'],
    ];
    expect(matchSpecs(spec, withBmc)).toEqual({ '$ipmi-channel': '2' });
  });
});

/** `category/name/attribute` with device names and indexes generalised. */
function vocabularyKey([category, name, attribute]: readonly unknown[]): string {
  const n = String(name);
  const generalName = category === 'disk' || category === 'network' ? (/^(logical|megaraid|hpa)$/.test(n) ? n : '*') : n.replace(/\d+/g, 'N');
  return `${String(category)}/${generalName}/${String(attribute)}`;
}

/** Emitted by hardware-detect (read from its source) but absent from the old fixture lists. */
const HARDWARE_DETECT_ONLY = new Set([
  'system/product/uuid',
  'system/motherboard/name',
  'system/motherboard/vendor',
  'system/motherboard/version',
  'system/motherboard/serial',
  'disk/*/rotational',
  'disk/*/wwn-id',
  'cpu/physical_N/version',
  'ipmi/lan/*',
]);

/** Plinth's additions, documented in docs/facts.md. */
const PLINTH_ADDITIONS = new Set([
  'firmware/boot/mode',
  'system/chassis/vendor',
  'system/chassis/serial',
  'system/chassis/asset_tag',
  'disk/*/removable',
  'disk/*/serial',
  'disk/*/wwn',
  'network/*/ipv6',
]);

describe('hw vocabulary', () => {
  const fixtureKeys = new Set<string>();
  for (const file of [
    'edeploy-hw/edeploy_test_vm-kvm-52-54-12-34-00-03.hw.json',
    'edeploy-hw/PowerEdgeM520SKUNotProvidedModelNamePowerEdgeM520-DellInc-9K9PW02.hw.json',
    'edeploy-hw/ProLiantDL360pGen8654081B21-HP-CZ3323FDVK.hw.json',
    'hw-lists-hp-bl460c/ProLiantBL460cGen8641016B21-HP-CZ3404YWNN9c-b6-54-88-2d-b0.hw_.json',
  ]) {
    for (const tuple of JSON.parse(shared(file)) as unknown[][]) fixtureKeys.add(vocabularyKey(tuple));
  }

  it('every tuple Plinth emits is eDeploy vocabulary or a documented addition', () => {
    const withBmc = assembleFacts(inputsFrom('qemu-uefi', { ipmi: { lan: parseIpmiLanPrint(shared('hardware-samples/ipmi_lan_info')), channel: 1 } }));
    const hw: HwTuple[] = [...assembleFacts(inputsFrom('qemu-bios')).hw, ...withBmc.hw];
    const unknown = [...new Set(hw.map(vocabularyKey))].filter(
      (key) => !fixtureKeys.has(key) && !HARDWARE_DETECT_ONLY.has(key) && !HARDWARE_DETECT_ONLY.has(key.replace(/[^/]+$/, '*')) && !PLINTH_ADDITIONS.has(key),
    );
    expect(unknown).toEqual([]);
  });

  it('uses the fixture names for the facts specs rely on', () => {
    for (const key of ['system/product/serial', 'system/product/name', 'system/product/vendor', 'memory/total/size', 'cpu/physical/number', 'cpu/logical/number', 'disk/*/size', 'network/*/serial', 'network/*/ipv4', 'network/*/link', 'firmware/bios/version', 'system/ipmi/channel']) {
      expect(fixtureKeys.has(key), key).toBe(true);
    }
  });
});
