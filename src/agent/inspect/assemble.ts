import type { CpuFacts, DiskFacts, Facts, HwTuple, MemoryFacts, NicFacts, SystemFacts } from '../../core/facts.js';
import type { CpuinfoSummary } from './cpuinfo.js';
import { installedMemoryBytes, type DmiInfo, type DmiMemoryDevice, type DmiProcessor } from './dmidecode.js';
import type { EthtoolDriver, EthtoolLink } from './ethtool.js';
import type { InterfaceAddress, NetInterface } from './ip-addr.js';
import type { IpmiLan } from './ipmitool.js';
import type { LscpuInfo } from './lscpu.js';
import { isInstallableDisk, type BlockDevice } from './lsblk.js';
import type { PciDevice } from './lspci.js';

/**
 * Everything the inspection read, parsed. The assembler is pure: the collector gathers
 * these (degrading to null / empty when a tool is missing), this turns them into `Facts`.
 * When two sources can answer the same question, the order of preference is decided here
 * and documented in docs/facts.md.
 */
export interface InspectionInputs {
  /** From dmidecode, or rebuilt from /sys/class/dmi/id (no processors, no memory devices). */
  dmi: DmiInfo | null;
  lscpu: LscpuInfo | null;
  /** /proc/cpuinfo, read when lscpu is missing. */
  cpuinfo: CpuinfoSummary | null;
  /** `uname -m`, read when lscpu is missing. */
  machineArchitecture: string | null;
  /** MemTotal from /proc/meminfo, in bytes. */
  memTotalBytes: number | null;
  /** Every device lsblk listed; the assembler keeps the installable disks. */
  blockDevices: BlockDevice[];
  nics: NicInputs[];
  pciDevices: PciDevice[];
  /** Null when there is no BMC or ipmitool could not reach it. */
  ipmi: { lan: IpmiLan; channel: number | null } | null;
  /** /sys/firmware/efi exists. */
  uefi: boolean;
}

export interface NicInputs {
  iface: NetInterface;
  ethtool: EthtoolLink | null;
  driver: EthtoolDriver | null;
  /** /sys/class/net/NAME/carrier; null when unreadable (the interface is down). */
  carrier: boolean | null;
  /** The driver's name from /sys/class/net/NAME/device/driver, for when ethtool is missing. */
  sysfsDriver: string | null;
}

const present = (value: string | null | undefined): value is string => typeof value === 'string' && value.trim() !== '';

/** Appends a tuple when the value is known; values are strings (eDeploy semantics, decision 8). */
class TupleList {
  readonly tuples: HwTuple[] = [];
  add(category: string, name: string, attribute: string, value: string | number | null | undefined): void {
    if (value === null || value === undefined) return;
    const text = String(value).trim();
    if (text === '') return;
    this.tuples.push([category, name, attribute, text]);
  }
}

export function assembleFacts(inputs: InspectionInputs): Facts {
  const hw = new TupleList();
  const system = assembleSystem(inputs.dmi, hw);
  const firmware = {
    bootMode: inputs.uefi ? ('uefi' as const) : ('bios' as const),
    vendor: inputs.dmi?.bios?.vendor ?? null,
    version: inputs.dmi?.bios?.version ?? null,
  };
  hw.add('firmware', 'bios', 'version', firmware.version);
  hw.add('firmware', 'bios', 'date', inputs.dmi?.bios?.releaseDate);
  hw.add('firmware', 'bios', 'vendor', firmware.vendor);
  hw.add('firmware', 'boot', 'mode', firmware.bootMode);
  const cpu = assembleCpu(inputs, hw);
  const memory = assembleMemory(inputs, hw);
  const disks = assembleDisks(inputs.blockDevices, hw);
  const nics = assembleNics(inputs.nics, inputs.pciDevices, hw);
  let bmc: Facts['bmc'] = null;
  if (inputs.ipmi && (inputs.ipmi.lan.ipAddress !== null || inputs.ipmi.lan.macAddress !== null)) {
    const ip = inputs.ipmi.lan.ipAddress;
    // NOTE: BMCs print 0.0.0.0 when no address is configured; the hw list keeps it as printed.
    bmc = { ipv4: ip === null || ip === '0.0.0.0' ? null : ip, mac: inputs.ipmi.lan.macAddress };
  }
  if (inputs.ipmi) {
    hw.add('system', 'ipmi', 'channel', inputs.ipmi.channel);
    for (const [key, value] of inputs.ipmi.lan.entries) hw.add('ipmi', 'lan', key, value);
  }
  return { system, cpu, memory, disks, nics, firmware, bmc, hw: hw.tuples };
}

function assembleSystem(dmi: DmiInfo | null, hw: TupleList): SystemFacts {
  const s = dmi?.system ?? null;
  const assetTag = dmi?.chassis ? dmi.chassis.assetTag : (dmi?.baseboard?.assetTag ?? null);
  if (s) {
    hw.add('system', 'product', 'serial', s.serial);
    hw.add('system', 'product', 'name', lshwProductName(s.productName, s.sku));
    hw.add('system', 'product', 'vendor', s.manufacturer);
    hw.add('system', 'product', 'version', s.version);
    hw.add('system', 'product', 'uuid', s.uuid);
  }
  const board = dmi?.baseboard;
  if (board) {
    hw.add('system', 'motherboard', 'name', board.productName);
    hw.add('system', 'motherboard', 'vendor', board.manufacturer);
    hw.add('system', 'motherboard', 'version', board.version);
    hw.add('system', 'motherboard', 'serial', board.serial);
  }
  if (dmi?.chassis) {
    hw.add('system', 'chassis', 'vendor', dmi.chassis.manufacturer);
    hw.add('system', 'chassis', 'serial', dmi.chassis.serial);
    hw.add('system', 'chassis', 'asset_tag', dmi.chassis.assetTag);
  }
  return {
    uuid: s?.uuid ?? null,
    serial: s?.serial ?? null,
    assetTag,
    manufacturer: s?.manufacturer ?? null,
    productName: s?.productName ?? null,
  };
}

/**
 * eDeploy read the product name through lshw, which appends the SKU in parentheses when
 * the table has a SKU field (SMBIOS 2.4+), even an empty one: "ProLiant DL360p Gen8
 * (654081-B21)", "edeploy_test_vm ()". Specs written against those lists say so.
 */
export function lshwProductName(productName: string | null, sku: string | null): string | null {
  if (!present(productName)) return null;
  if (sku === null) return productName;
  // NOTE: dmidecode prints "Not Specified" for an absent string; lshw saw an empty one.
  const skuText = /^not specified$/i.test(sku.trim()) ? '' : sku.trim();
  return `${productName} (${skuText})`;
}

// NOTE: lshw named CPU vendors from /proc/cpuinfo's vendor_id; specs carry lshw's names.
const LSHW_CPU_VENDORS: Record<string, string> = {
  GenuineIntel: 'Intel Corp.',
  AuthenticAMD: 'Advanced Micro Devices [AMD]',
};

function assembleCpu(inputs: InspectionInputs, hw: TupleList): CpuFacts {
  const { lscpu, cpuinfo, dmi } = inputs;
  const processors: DmiProcessor[] = (dmi?.processors ?? []).filter((p) => p.populated);
  const sum = (pick: (p: DmiProcessor) => number | null): number | null => {
    const values = processors.map(pick);
    return values.length > 0 && values.every((v) => v !== null) ? values.reduce<number>((a, v) => a + (v ?? 0), 0) : null;
  };

  const sockets = lscpu?.sockets ?? (processors.length > 0 ? processors.length : 1);
  const threads = lscpu?.onlineCpus ?? lscpu?.cpus ?? (cpuinfo?.logicalCpus || null) ?? sum((p) => p.threadCount) ?? 1;
  const cores =
    lscpu?.coresPerSocket != null
      ? sockets * lscpu.coresPerSocket
      : (sum((p) => p.coreEnabled ?? p.coreCount) ?? Math.max(1, Math.floor(threads / (lscpu?.threadsPerCore ?? 1))));
  const model = lscpu?.modelName ?? cpuinfo?.modelName ?? processors[0]?.version ?? null;
  const architecture = lscpu?.architecture ?? inputs.machineArchitecture ?? 'unknown';

  const vendorId = lscpu?.vendorId ?? cpuinfo?.vendorId ?? null;
  const lshwVendor = vendorId !== null ? (LSHW_CPU_VENDORS[vendorId] ?? null) : null;
  if (processors.length > 0) {
    processors.forEach((p, i) => {
      const name = `physical_${i}`;
      // NOTE: lshw's physid for a CPU is its SMBIOS handle in hex without leading zeros (0x0400 -> "400").
      hw.add('cpu', name, 'physid', p.handle.toString(16));
      hw.add('cpu', name, 'product', model ?? p.version);
      hw.add('cpu', name, 'vendor', lshwVendor ?? p.manufacturer ?? vendorId);
      hw.add('cpu', name, 'version', p.version);
      hw.add('cpu', name, 'frequency', p.currentSpeedMhz !== null ? p.currentSpeedMhz * 1_000_000 : null);
      hw.add('cpu', name, 'clock', p.externalClockMhz !== null ? p.externalClockMhz * 1_000_000 : null);
      hw.add('cpu', name, 'cores', p.coreCount);
      hw.add('cpu', name, 'enabled_cores', p.coreEnabled);
      hw.add('cpu', name, 'threads', p.threadCount);
    });
  } else {
    const coresPerSocket = lscpu?.coresPerSocket ?? null;
    for (let i = 0; i < sockets; i++) {
      const name = `physical_${i}`;
      hw.add('cpu', name, 'product', model);
      hw.add('cpu', name, 'vendor', lshwVendor ?? vendorId);
      hw.add('cpu', name, 'cores', coresPerSocket);
      hw.add('cpu', name, 'threads', coresPerSocket !== null && lscpu?.threadsPerCore != null ? coresPerSocket * lscpu.threadsPerCore : null);
    }
  }
  hw.add('cpu', 'physical', 'number', sockets);
  hw.add('cpu', 'logical', 'number', threads);
  if (architecture !== 'unknown') hw.add('system', 'kernel', 'arch', architecture);
  return { architecture, model, sockets, cores, threads };
}

function assembleMemory(inputs: InspectionInputs, hw: TupleList): MemoryFacts {
  const installed = inputs.dmi ? installedMemoryBytes(inputs.dmi) : null;
  const memory: MemoryFacts =
    installed !== null ? { totalBytes: installed, source: 'smbios' } : { totalBytes: inputs.memTotalBytes ?? 0, source: 'meminfo' };
  if (memory.totalBytes > 0) hw.add('memory', 'total', 'size', memory.totalBytes);

  const devices = inputs.dmi?.memoryDevices ?? [];
  const bankNames = lshwBankNames(inputs.dmi);
  devices.forEach((d) => {
    const bank = bankNames.get(d.handle);
    if (bank === undefined) return;
    hw.add('memory', bank, 'size', d.sizeBytes);
    hw.add('memory', bank, 'clock', d.sizeBytes !== null && d.speedMts !== null ? d.speedMts * 1_000_000 : null);
    hw.add('memory', bank, 'description', lshwBankDescription(d));
    hw.add('memory', bank, 'vendor', d.manufacturer);
    hw.add('memory', bank, 'product', d.partNumber);
    hw.add('memory', bank, 'serial', d.serial);
    hw.add('memory', bank, 'slot', d.locator);
  });
  if (devices.length > 0) hw.add('memory', 'banks', 'count', devices.length);
  return memory;
}

/**
 * lshw (and so eDeploy) numbers the banks within each system-memory array: "bank:N" when
 * there is one array, "bank:A:N" when there are several (one per CPU on two-socket boards).
 */
function lshwBankNames(dmi: DmiInfo | null): Map<number, string> {
  const names = new Map<number, string>();
  if (!dmi) return names;
  const arrays = dmi.memoryArrays.filter((a) => a.use === null || /system memory/i.test(a.use)).map((a) => a.handle);
  if (arrays.length === 0) {
    dmi.memoryDevices.forEach((device, i) => names.set(device.handle, `bank:${i}`));
    return names;
  }
  const perArray = new Map<number, number>();
  for (const device of dmi.memoryDevices) {
    const arrayIndex = device.arrayHandle === null ? -1 : arrays.indexOf(device.arrayHandle);
    if (arrayIndex < 0) continue;
    const n = perArray.get(arrayIndex) ?? 0;
    perArray.set(arrayIndex, n + 1);
    names.set(device.handle, arrays.length > 1 ? `bank:${arrayIndex}:${n}` : `bank:${n}`);
  }
  return names;
}

const known = (value: string | null): value is string => present(value) && !/^(unknown|other|none|not specified)$/i.test(value);

/** lshw's bank description: "DIMM DDR3 Synchronous 1600 MHz (0.6 ns)", "... [empty]" for a free slot. */
function lshwBankDescription(d: DmiMemoryDevice): string | null {
  const words = [d.formFactor, d.type, d.typeDetail].filter(known);
  if (words.length === 0) return null;
  const base = words.join(' ');
  if (d.sizeBytes === null) return `${base} [empty]`;
  if (d.speedMts === null || d.speedMts === 0) return base;
  return `${base} ${d.speedMts} MHz (${(1000 / d.speedMts).toFixed(1)} ns)`;
}

function assembleDisks(devices: BlockDevice[], hw: TupleList): DiskFacts[] {
  const disks = devices.filter(isInstallableDisk);
  hw.add('disk', 'logical', 'count', disks.length);
  return disks.map((d) => {
    // NOTE: hardware-detect reports disk sizes in decimal GB, rounded down (sectors * 512 / 10^9).
    hw.add('disk', d.name, 'size', Math.floor(d.sizeBytes / 1_000_000_000));
    hw.add('disk', d.name, 'vendor', d.vendor);
    hw.add('disk', d.name, 'model', d.model);
    hw.add('disk', d.name, 'rev', d.revision);
    hw.add('disk', d.name, 'rotational', d.rotational ? '1' : '0');
    hw.add('disk', d.name, 'removable', d.removable ? '1' : '0');
    hw.add('disk', d.name, 'serial', d.serial);
    hw.add('disk', d.name, 'wwn', d.wwn);
    if (d.wwn !== null && d.wwn.startsWith('0x')) hw.add('disk', d.name, 'wwn-id', `wwn-${d.wwn}`);
    return { name: d.name, sizeBytes: d.sizeBytes, model: d.model, serial: d.serial, wwn: d.wwn, rotational: d.rotational };
  });
}

/** lshw's spelling of a link speed: "1Gbit/s", "10Gbit/s", "100Mbit/s", "2500Mbit/s". */
export function lshwSpeed(mbps: number): string {
  return mbps % 1000 === 0 ? `${mbps / 1000}Gbit/s` : `${mbps}Mbit/s`;
}

function ipv4Mask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

function ipv4ToNumber(address: string): number | null {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return null;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

const numberToIpv4 = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i;

function assembleNics(nics: NicInputs[], pci: PciDevice[], hw: TupleList): NicFacts[] {
  return nics.map(({ iface, ethtool, driver, carrier, sysfsDriver }) => {
    const link = ethtool?.linkDetected ?? carrier ?? iface.lowerUp;
    const driverName = driver?.driver ?? sysfsDriver;
    const speedMbps = ethtool?.speedMbps ?? null;
    const busInfo = driver?.busInfo ?? null;
    const card = busInfo !== null ? pci.find((p) => p.slot.toLowerCase() === busInfo.toLowerCase()) : undefined;

    const name = iface.name;
    hw.add('network', name, 'serial', iface.mac);
    hw.add('network', name, 'vendor', card?.vendor);
    hw.add('network', name, 'product', card?.device);
    if (busInfo !== null && PCI_ADDRESS.test(busInfo)) hw.add('network', name, 'businfo', `pci@${busInfo}`);
    if (speedMbps !== null) {
      hw.add('network', name, 'size', speedMbps * 1_000_000);
      hw.add('network', name, 'speed', lshwSpeed(speedMbps));
    }
    // NOTE: lshw reported one IPv4 address per interface, the first one.
    const primary: InterfaceAddress | undefined = iface.ipv4[0];
    if (primary) {
      const address = ipv4ToNumber(primary.address);
      hw.add('network', name, 'ipv4', primary.address);
      if (address !== null) {
        const mask = ipv4Mask(primary.prefixLength);
        hw.add('network', name, 'ipv4-netmask', numberToIpv4(mask));
        hw.add('network', name, 'ipv4-cidr', primary.prefixLength);
        hw.add('network', name, 'ipv4-network', numberToIpv4((address & mask) >>> 0));
      }
    }
    for (const v6 of iface.ipv6) hw.add('network', name, 'ipv6', v6.address);
    hw.add('network', name, 'link', link ? 'yes' : 'no');
    hw.add('network', name, 'driver', driverName);
    hw.add('network', name, 'duplex', ethtool?.duplex);
    hw.add('network', name, 'autonegotiation', ethtool?.autoNegotiation);

    return {
      name,
      mac: iface.mac,
      driver: driverName,
      speedMbps,
      link,
      ipv4: iface.ipv4.map((a) => a.address),
      ipv6: iface.ipv6.map((a) => a.address),
    };
  });
}
