import type { DmiInfo } from './dmidecode.js';
import type { FactsFs } from './facts-fs.js';

const DMI_ID = '/sys/class/dmi/id';

/**
 * The identity part of the SMBIOS tables as the kernel exports it under /sys/class/dmi/id:
 * the fallback when dmidecode is missing or cannot read the tables. It has no processor
 * or memory device records, so memory falls back to MemTotal. Null when the kernel
 * exports nothing (no SMBIOS at all: some ARM boards, Firecracker).
 */
export async function readSysfsDmi(fs: FactsFs): Promise<DmiInfo | null> {
  const names = await fs.listDir(DMI_ID);
  if (names === null) return null;
  const has = new Set(names);
  const read = async (name: string): Promise<string | null> => {
    if (!has.has(name)) return null;
    const text = await fs.readText(`${DMI_ID}/${name}`);
    // NOTE: sysfs ends each value with a newline; an unreadable file (serials are root-only) gives null.
    return text === null ? null : text.replace(/\n$/, '').trim();
  };
  const [biosVendor, biosVersion, biosDate] = await Promise.all([read('bios_vendor'), read('bios_version'), read('bios_date')]);
  const [sysVendor, productName, productVersion, productSerial, productUuid, productSku, productFamily] = await Promise.all([
    read('sys_vendor'),
    read('product_name'),
    read('product_version'),
    read('product_serial'),
    read('product_uuid'),
    read('product_sku'),
    read('product_family'),
  ]);
  const [boardVendor, boardName, boardVersion, boardSerial, boardAssetTag] = await Promise.all([
    read('board_vendor'),
    read('board_name'),
    read('board_version'),
    read('board_serial'),
    read('board_asset_tag'),
  ]);
  const [chassisVendor, chassisType, chassisVersion, chassisSerial, chassisAssetTag] = await Promise.all([
    read('chassis_vendor'),
    read('chassis_type'),
    read('chassis_version'),
    read('chassis_serial'),
    read('chassis_asset_tag'),
  ]);
  return {
    smbiosVersion: null,
    bios: { vendor: biosVendor, version: biosVersion, releaseDate: biosDate },
    system: {
      manufacturer: sysVendor,
      productName,
      version: productVersion,
      serial: productSerial,
      uuid: productUuid,
      sku: productSku,
      family: productFamily,
    },
    baseboard: { manufacturer: boardVendor, productName: boardName, version: boardVersion, serial: boardSerial, assetTag: boardAssetTag },
    chassis: { manufacturer: chassisVendor, type: chassisType, version: chassisVersion, serial: chassisSerial, assetTag: chassisAssetTag },
    processors: [],
    memoryArrays: [],
    memoryDevices: [],
    ipmi: null,
  };
}
