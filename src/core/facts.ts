/**
 * The hardware facts an agent reports (DESIGN.md "Facts"): structured, and the same facts as
 * eDeploy's list of 4-tuples `[category, name, attribute, value]` so that eDeploy specs match
 * them unchanged. Values in `hw` are strings (eDeploy semantics note, decision 8).
 */
/*
 * What a machine may report in the fields that reach rendered formats. Facts come from
 * whoever holds a run token on the provisioning network, and disk and NIC names end up on
 * preseed lines, kickstart commands and kernel command lines: they are checked when they
 * arrive (src/protocol/facts.ts) and again where they are used (src/templates/context.ts).
 */

/** A kernel block device name as lsblk reports it (sda, nvme0n1, cciss/c0d0): no spaces, quotes or `..`. */
export const DISK_NAME_PATTERN = '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._:+/-]{0,127}$';
/** A kernel network interface name (IFNAMSIZ: at most 15 characters). */
export const NIC_NAME_PATTERN = '^[A-Za-z0-9_.-]{1,15}$';
/** Any other reported text (serials, models, hw values…): one line, no control characters. */
export const FACT_TEXT_PATTERN = '^[^\\u0000-\\u001f\\u007f]*$';

export interface SystemFacts {
  uuid: string | null;
  serial: string | null;
  assetTag: string | null;
  manufacturer: string | null;
  productName: string | null;
}

export interface CpuFacts {
  architecture: string;
  model: string | null;
  sockets: number;
  cores: number;
  threads: number;
}

export interface MemoryFacts {
  /** Installed memory: the sum of the SMBIOS memory devices where present, else MemTotal. */
  totalBytes: number;
  /** Where totalBytes came from. */
  source: 'smbios' | 'meminfo';
}

export interface DiskFacts {
  name: string;
  sizeBytes: number;
  model: string | null;
  serial: string | null;
  wwn: string | null;
  rotational: boolean;
}

export interface NicFacts {
  name: string;
  mac: string;
  driver: string | null;
  speedMbps: number | null;
  link: boolean;
  ipv4: string[];
  ipv6: string[];
}

export interface FirmwareFacts {
  bootMode: 'uefi' | 'bios';
  vendor: string | null;
  version: string | null;
}

export interface BmcFacts {
  ipv4: string | null;
  mac: string | null;
}

export type HwTuple = [string, string, string, string];

export interface Facts {
  system: SystemFacts;
  cpu: CpuFacts;
  memory: MemoryFacts;
  disks: DiskFacts[];
  nics: NicFacts[];
  firmware: FirmwareFacts;
  bmc: BmcFacts | null;
  hw: HwTuple[];
}
