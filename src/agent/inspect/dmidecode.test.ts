import { describe, expect, it } from 'vitest';
import { installedMemoryBytes, parseDmiSize, parseDmidecode, parseDmiRecords } from './dmidecode.js';
import { capture } from './test-fixtures.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe('parseDmidecode on a QEMU VM booted with SeaBIOS (test/fixtures/hw/qemu-bios)', () => {
  const dmi = parseDmidecode(capture('qemu-bios', 'dmidecode.txt'));

  it('reads the SMBIOS version and BIOS (type 0)', () => {
    expect(dmi.smbiosVersion).toBe('2.8');
    expect(dmi.bios).toEqual({ vendor: 'PlinthLab', version: '1.2.3', releaseDate: 'Not Specified' });
  });

  it('reads the system (type 1) as the firmware published it', () => {
    expect(dmi.system).toEqual({
      manufacturer: 'Plinth Test Systems',
      productName: 'Plinth Lab Node',
      version: 'pc-i440fx-7.2',
      serial: 'PLN-0001-SN',
      uuid: '5a3f0c2e-8b1d-4e6a-9c7f-1d2e3f405162',
      sku: 'Not Specified',
      family: 'Not Specified',
    });
  });

  it('reads the baseboard (type 2) and the chassis (type 3) with its asset tag', () => {
    expect(dmi.baseboard).toEqual({ manufacturer: 'Plinth Boards', productName: 'PB-1', version: 'pc-i440fx-7.2', serial: 'BRD-77', assetTag: 'Not Specified' });
    expect(dmi.chassis).toEqual({ manufacturer: 'Plinth Test Systems', type: 'Other', version: 'pc-i440fx-7.2', serial: 'CH-4242', assetTag: 'ASSET-0042' });
  });

  it('reads both processors (type 4, -smp 4,sockets=2,cores=2)', () => {
    expect(dmi.processors).toHaveLength(2);
    expect(dmi.processors[1]).toEqual({
      handle: 0x0401,
      socket: 'CPU 1',
      manufacturer: 'QEMU',
      version: 'pc-i440fx-7.2',
      populated: true,
      coreCount: 2,
      coreEnabled: 2,
      threadCount: 2,
      currentSpeedMhz: 2000,
      externalClockMhz: null,
    });
  });

  it('reads the memory array (type 16) and its one 1536 MB device (type 17)', () => {
    expect(dmi.memoryArrays).toEqual([{ handle: 0x1000, use: 'System Memory' }]);
    expect(dmi.memoryDevices).toHaveLength(1);
    expect(dmi.memoryDevices[0]).toMatchObject({ handle: 0x1100, arrayHandle: 0x1000, sizeBytes: 1536 * MiB, sizeText: '1536 MB', locator: 'DIMM 0', manufacturer: 'QEMU', speedMts: null });
    expect(installedMemoryBytes(dmi)).toBe(1536 * MiB);
  });

  it('reads the IPMI device (type 38)', () => {
    expect(dmi.ipmi).toEqual({ interfaceType: 'KCS (Keyboard Control Style)', specificationVersion: '2.0', baseAddress: '0x0000000000000CA2 (I/O)' });
  });

  it('keeps indented lists under their key', () => {
    const bios = parseDmiRecords(capture('qemu-bios', 'dmidecode.txt')).find((r) => r.type === 0)!;
    expect(bios.title).toBe('BIOS Information');
    expect(bios.lists.get('Characteristics')).toEqual(['BIOS characteristics not supported', 'Targeted content distribution is supported', 'System is a virtual machine']);
  });
});

describe('parseDmidecode on a QEMU VM booted with OVMF and placeholder SMBIOS strings (qemu-uefi)', () => {
  const dmi = parseDmidecode(capture('qemu-uefi', 'dmidecode.txt'));

  it('passes junk identity values through as reported (the controller filters them)', () => {
    expect(dmi.system?.serial).toBe('To Be Filled By O.E.M.');
    expect(dmi.system?.manufacturer).toBe('To Be Filled By O.E.M.');
    expect(dmi.system?.uuid).toBe('03000200-0400-0500-0006-000700080009');
    expect(dmi.chassis?.assetTag).toBe('Default string');
    expect(dmi.baseboard?.serial).toBe('Default string');
  });

  it('finds the BIOS record even when it is not the first one (OVMF puts it last)', () => {
    expect(dmi.bios).toEqual({ vendor: 'EFI Development Kit II / OVMF', version: '0.0.0', releaseDate: '02/06/2015' });
  });

  it('sums DIMMs printed in different units: 16 GB + 2560 MB', () => {
    expect(dmi.memoryDevices.map((d) => d.sizeText)).toEqual(['16 GB', '2560 MB']);
    expect(installedMemoryBytes(dmi)).toBe(16 * GiB + 2560 * MiB);
  });

  it('has no IPMI device when the VM has no BMC', () => {
    expect(dmi.ipmi).toBeNull();
  });
});

describe('parseDmidecode on a machine without SMBIOS (host capture: dmidecode exits 1)', () => {
  it('finds no tables at all', () => {
    const dmi = parseDmidecode(capture('host', 'dmidecode.txt'));
    expect(dmi).toMatchObject({ smbiosVersion: null, bios: null, system: null, processors: [], memoryDevices: [] });
    expect(installedMemoryBytes(dmi)).toBeNull();
  });
});

describe('parseDmiSize', () => {
  it.each([
    ['16 GB', 16 * GiB],
    ['1536 MB', 1536 * MiB],
    ['16384 MB', 16 * GiB],
    ['512 kB', 512 * 1024],
    ['512 KB', 512 * 1024],
    ['2 TB', 2 * 1024 ** 4],
    ['8 bytes', 8],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseDmiSize(text)).toBe(bytes);
  });

  it.each(['No Module Installed', 'Not Installed', 'Unknown', 'None', '', '16 parsecs'])('%s is no size', (text) => {
    expect(parseDmiSize(text)).toBeNull();
  });
});

/**
 * A two-socket board in dmidecode 3.x format (SMBIOS 3.2 fields), shaped after real
 * servers: one memory array per CPU, empty slots, the "Volatile Size" family of lines,
 * a flash array, and an empty CPU socket.
 */
const TWO_SOCKET = `# dmidecode 3.3
Getting SMBIOS data from sysfs.
SMBIOS 3.2.0 present.

Handle 0x0040, DMI type 4, 48 bytes
Processor Information
\tSocket Designation: CPU1
\tManufacturer: Intel
\tVersion: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
\tExternal Clock: 100 MHz
\tCurrent Speed: 2100 MHz
\tStatus: Populated, Enabled
\tCore Count: 20
\tCore Enabled: 20
\tThread Count: 40

Handle 0x0041, DMI type 4, 48 bytes
Processor Information
\tSocket Designation: CPU2
\tManufacturer: Not Specified
\tVersion: Not Specified
\tStatus: Unpopulated
\tCore Count: 0

Handle 0x1000, DMI type 16, 23 bytes
Physical Memory Array
\tLocation: System Board Or Motherboard
\tUse: System Memory
\tMaximum Capacity: 1536 GB
\tNumber Of Devices: 2

Handle 0x1001, DMI type 16, 23 bytes
Physical Memory Array
\tLocation: System Board Or Motherboard
\tUse: System Memory
\tNumber Of Devices: 2

Handle 0x1002, DMI type 16, 23 bytes
Physical Memory Array
\tLocation: System Board Or Motherboard
\tUse: Flash Memory
\tNumber Of Devices: 1

Handle 0x1100, DMI type 17, 84 bytes
Memory Device
\tArray Handle: 0x1000
\tSize: 32 GB
\tForm Factor: DIMM
\tLocator: A1
\tType: DDR4
\tType Detail: Synchronous Registered (Buffered)
\tSpeed: 2933 MT/s
\tManufacturer: Samsung
\tSerial Number: 1234ABCD
\tPart Number: M393A4K40CB2-CVF
\tNon-Volatile Size: None
\tVolatile Size: 32 GB
\tCache Size: None
\tLogical Size: None

Handle 0x1101, DMI type 17, 84 bytes
Memory Device
\tArray Handle: 0x1000
\tSize: No Module Installed
\tForm Factor: DIMM
\tLocator: A2
\tType: Unknown
\tVolatile Size: None

Handle 0x1102, DMI type 17, 84 bytes
Memory Device
\tArray Handle: 0x1001
\tSize: 32768 MB
\tForm Factor: DIMM
\tLocator: B1
\tType: DDR4
\tSpeed: 2933 MT/s

Handle 0x1103, DMI type 17, 84 bytes
Memory Device
\tArray Handle: 0x1001
\tSize: Unknown
\tLocator: B2

Handle 0x1104, DMI type 17, 84 bytes
Memory Device
\tArray Handle: 0x1002
\tSize: 16 MB
\tForm Factor: Chip
\tLocator: SPI
\tType: Flash

Handle 0x0005, DMI type 126, 4 bytes
Inactive

Handle 0x7F00, DMI type 127, 4 bytes
End Of Table
`;

describe('parseDmidecode on a two-socket layout', () => {
  const dmi = parseDmidecode(TWO_SOCKET);

  it('marks the empty socket unpopulated', () => {
    expect(dmi.processors.map((p) => [p.socket, p.populated])).toEqual([
      ['CPU1', true],
      ['CPU2', false],
    ]);
    expect(dmi.processors[0]).toMatchObject({ coreCount: 20, threadCount: 40, currentSpeedMhz: 2100, externalClockMhz: 100 });
  });

  it('reads the module size from "Size", never from "Volatile Size" and friends', () => {
    expect(dmi.memoryDevices.map((d) => d.sizeBytes)).toEqual([32 * GiB, null, 32 * GiB, null, 16 * MiB]);
  });

  it('sums installed system memory: empty and unknown slots and the flash array do not count', () => {
    expect(installedMemoryBytes(dmi)).toBe(64 * GiB);
  });

  it('reads memory speed in MT/s and the dmidecode 2.x spelling MHz', () => {
    expect(dmi.memoryDevices[0]!.speedMts).toBe(2933);
    expect(parseDmidecode(TWO_SOCKET.replaceAll('2933 MT/s', '1600 MHz')).memoryDevices[0]!.speedMts).toBe(1600);
  });
});
