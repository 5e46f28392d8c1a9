import type { DiskFacts, Facts } from '../../core/facts.js';
import { StepError } from './errors.js';
import type { RootDeviceHints } from './protocol.js';
import { formatBytes, GiB } from './units.js';

/**
 * Which disk gets the image. With root device hints, only disks matching every hint are
 * candidates (Ironic's semantics, exact matches); the smallest candidate the image fits on
 * wins, so that larger disks stay free for data. Ties keep the inspection's order.
 */

/** A disk as inspection saw it; the vendor lives only in the hw tuples, hence the extra field. */
export type CandidateDisk = DiskFacts & { vendor?: string | null };

/** The disks of a facts document, each with the vendor its hw tuples name. */
export function candidateDisks(facts: Facts): CandidateDisk[] {
  return facts.disks.map((d) => ({
    ...d,
    vendor: facts.hw.find(([category, name, attribute]) => category === 'disk' && name === d.name && attribute === 'vendor')?.[3] ?? null,
  }));
}

export function chooseRootDisk(disks: CandidateDisk[], hints: RootDeviceHints | undefined, imageBytes: number): CandidateDisk {
  if (disks.length === 0) throw new StepError('disk', 'this machine has no disk to deploy to: inspection found none', { disks: [] });
  const given = Object.entries(hints ?? {}).filter(([, v]) => v !== undefined) as [keyof RootDeviceHints, string | number][];
  const candidates = disks.filter((d) => given.every(([hint, value]) => hintMatches(d, hint, value)));
  if (candidates.length === 0) {
    throw new StepError('disk', `no disk matches the root device hints ${describeHints(given)}; the disks are: ${disks.map(describeDisk).join('; ')}`, {
      hints: Object.fromEntries(given),
      disks: disks.map((d) => d.name),
    });
  }
  const fitting = candidates.filter((d) => d.sizeBytes >= imageBytes).sort((a, b) => a.sizeBytes - b.sizeBytes);
  const chosen = fitting[0];
  if (chosen === undefined) {
    const largest = candidates.reduce((a, b) => (b.sizeBytes > a.sizeBytes ? b : a));
    const among = given.length > 0 ? `every disk matching the root device hints ${describeHints(given)}` : 'every disk';
    throw new StepError(
      'disk',
      `the image (${formatBytes(imageBytes)}, ${imageBytes} bytes) is larger than ${among}: the largest is ${largest.name} (${formatBytes(largest.sizeBytes)}, ${largest.sizeBytes} bytes)`,
      { imageBytes, largest: largest.name, largestBytes: largest.sizeBytes },
    );
  }
  return chosen;
}

const deviceName = (name: string) => name.replace(/^\/dev\//, '');

function hintMatches(disk: CandidateDisk, hint: keyof RootDeviceHints, value: string | number): boolean {
  switch (hint) {
    case 'name':
      return deviceName(disk.name) === deviceName(String(value).trim());
    case 'sizeBytes':
      return disk.sizeBytes === value;
    case 'sizeGiB':
      return Math.floor(disk.sizeBytes / GiB) === value;
    case 'minSizeBytes':
      return disk.sizeBytes >= Number(value);
    case 'wwn':
      return disk.wwn !== null && disk.wwn.toLowerCase() === String(value).trim().toLowerCase();
    case 'serial':
    case 'model':
    case 'vendor': {
      const have = disk[hint];
      return have !== null && have !== undefined && have.trim() === String(value).trim();
    }
  }
}

function describeHints(given: [string, string | number][]): string {
  return given.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
}

function describeDisk(d: CandidateDisk): string {
  const text = (v: string | null | undefined) => (v === null || v === undefined ? 'unknown' : JSON.stringify(v));
  return `${d.name} (size ${d.sizeBytes} bytes = ${formatBytes(d.sizeBytes)}, serial ${text(d.serial)}, wwn ${text(d.wwn)}, model ${text(d.model)}, vendor ${text(d.vendor)})`;
}
