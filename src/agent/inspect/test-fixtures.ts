import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Where the tests find real tool outputs: the captures in test/fixtures/hw (see its
 * README) and the shared fixtures copied from eDeploy and redhat-cip/hardware.
 * Test support only; nothing in the agent imports it.
 */
export const HW_CAPTURES = fileURLToPath(new URL('../../../test/fixtures/hw/', import.meta.url));
export const SHARED_FIXTURES = '/work/shared/fixtures';

/** A capture: `capture('qemu-bios', 'dmidecode.txt')`. */
export function capture(machine: Machine, file: string): string {
  return readFileSync(`${HW_CAPTURES}${machine}/${file}`, 'utf8');
}

/** A shared fixture: `shared('hardware-samples/lscpu')`. */
export function shared(path: string): string {
  return readFileSync(`${SHARED_FIXTURES}/${path}`, 'utf8');
}

export type Machine = 'host' | 'qemu-bios' | 'qemu-uefi';

/** Captures whose command exited non-zero (their text is what it printed); see the README. */
export const FAILED_CAPTURES: Readonly<Record<Machine, Record<string, number>>> = {
  host: { 'dmidecode.txt': 1, 'ethtool-ifb0.txt': 75, 'ipmitool-lan.txt': 1 },
  'qemu-bios': { 'ipmitool-lan.txt': 1, 'efi.txt': 1, 'sysblock-sr0-device_wwid.txt': 1 },
  'qemu-uefi': { 'ipmitool-lan.txt': 1, 'sysblock-sdb-device_wwid.txt': 1, 'sysblock-sr0-device_wwid.txt': 1 },
};

/** The capture files of a machine. */
export function captureFiles(machine: Machine): string[] {
  return readdirSync(`${HW_CAPTURES}${machine}`).sort();
}
