import { describe, expect, it } from 'vitest';
import type { Facts } from '../../core/facts.js';
import { StepError } from './errors.js';
import { candidateDisks, chooseRootDisk, type CandidateDisk } from './root-disk.js';

const GiB = 2 ** 30;

function disk(name: string, sizeBytes: number, o: Partial<CandidateDisk> = {}): CandidateDisk {
  return { name, sizeBytes, model: null, serial: null, wwn: null, rotational: false, vendor: null, ...o };
}

const disks = [
  disk('sda', 480 * GiB, { serial: 'S1', wwn: '0x5000c500a1b2c3d4', model: 'SAMSUNG MZ7LH480', vendor: 'ATA' }),
  disk('sdb', 120 * GiB, { serial: 'S2', wwn: '0x5000c500a1b2c3d5', model: 'INTEL SSDSC2KB12', vendor: 'ATA' }),
  disk('nvme0n1', 960 * GiB, { serial: 'N1', model: 'Dell Ent NVMe', vendor: null }),
  disk('sdc', 120 * GiB, { serial: 'S3', model: 'INTEL SSDSC2KB12', vendor: 'ATA' }),
];

function failure(f: () => unknown): StepError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(StepError);
    return e as StepError;
  }
  throw new Error('expected a failure');
}

describe('chooseRootDisk', () => {
  it('defaults to the smallest disk the image fits on; the first of equals', () => {
    expect(chooseRootDisk(disks, undefined, 2 * GiB).name).toBe('sdb');
    expect(chooseRootDisk(disks, {}, 200 * GiB).name).toBe('sda');
    expect(chooseRootDisk(disks, undefined, 480 * GiB).name).toBe('sda');
    expect(chooseRootDisk(disks, undefined, 480 * GiB + 1).name).toBe('nvme0n1');
  });

  it('matches each hint exactly', () => {
    expect(chooseRootDisk(disks, { serial: 'N1' }, GiB).name).toBe('nvme0n1');
    expect(chooseRootDisk(disks, { name: '/dev/sdc' }, GiB).name).toBe('sdc');
    expect(chooseRootDisk(disks, { name: 'sdc' }, GiB).name).toBe('sdc');
    expect(chooseRootDisk(disks, { wwn: '0x5000C500A1B2C3D4' }, GiB).name).toBe('sda');
    expect(chooseRootDisk(disks, { sizeBytes: 960 * GiB }, GiB).name).toBe('nvme0n1');
    expect(chooseRootDisk(disks, { sizeGiB: 480 }, GiB).name).toBe('sda');
    expect(chooseRootDisk(disks, { minSizeBytes: 200 * GiB }, GiB).name).toBe('sda');
    expect(chooseRootDisk(disks, { model: 'INTEL SSDSC2KB12', serial: 'S3' }, GiB).name).toBe('sdc');
    expect(chooseRootDisk(disks, { vendor: 'ATA', minSizeBytes: 121 * GiB }, GiB).name).toBe('sda');
    // Exact, not a prefix or a substring.
    expect(() => chooseRootDisk(disks, { model: 'INTEL' }, GiB)).toThrow(StepError);
    expect(() => chooseRootDisk(disks, { name: 'sd' }, GiB)).toThrow(StepError);
  });

  it('rounds a disk down to whole GiB for the sizeGiB hint, as Ironic does', () => {
    const odd = [disk('vda', 10 * GiB + 512 * 2 ** 20)];
    expect(chooseRootDisk(odd, { sizeGiB: 10 }, GiB).name).toBe('vda');
    expect(() => chooseRootDisk(odd, { sizeGiB: 11 }, GiB)).toThrow(StepError);
  });

  it('lists every disk and what it has when no disk matches the hints', () => {
    const e = failure(() => chooseRootDisk(disks.slice(0, 3), { serial: 'NOPE', vendor: 'ATA' }, GiB));
    expect(e.code).toBe('disk');
    expect(e.message).toBe(
      'no disk matches the root device hints serial="NOPE", vendor="ATA"; the disks are: ' +
        'sda (size 515396075520 bytes = 480.0 GiB, serial "S1", wwn "0x5000c500a1b2c3d4", model "SAMSUNG MZ7LH480", vendor "ATA"); ' +
        'sdb (size 128849018880 bytes = 120.0 GiB, serial "S2", wwn "0x5000c500a1b2c3d5", model "INTEL SSDSC2KB12", vendor "ATA"); ' +
        'nvme0n1 (size 1030792151040 bytes = 960.0 GiB, serial "N1", wwn unknown, model "Dell Ent NVMe", vendor unknown)',
    );
    expect(e.details).toEqual({ hints: { serial: 'NOPE', vendor: 'ATA' }, disks: ['sda', 'sdb', 'nvme0n1'] });
  });

  it('names the image size and the largest disk when the image fits on none (code disk)', () => {
    const e = failure(() => chooseRootDisk(disks, undefined, 1024 * GiB));
    expect(e.code).toBe('disk');
    expect(e.message).toBe('the image (1024.0 GiB, 1099511627776 bytes) is larger than every disk: the largest is nvme0n1 (960.0 GiB, 1030792151040 bytes)');
    const hinted = failure(() => chooseRootDisk(disks, { vendor: 'ATA' }, 500 * GiB));
    expect(hinted.message).toBe('the image (500.0 GiB, 536870912000 bytes) is larger than every disk matching the root device hints vendor="ATA": the largest is sda (480.0 GiB, 515396075520 bytes)');
  });

  it('says so when the machine has no disk', () => {
    expect(failure(() => chooseRootDisk([], undefined, GiB)).message).toBe('this machine has no disk to deploy to: inspection found none');
  });
});

describe('candidateDisks', () => {
  it('takes each disk with the vendor its hw tuples name', () => {
    const facts = {
      disks: [disk('sda', GiB), disk('vda', GiB)].map(({ vendor: _, ...d }) => d),
      hw: [
        ['disk', 'sda', 'vendor', 'ATA'],
        ['disk', 'sda', 'model', 'X'],
        ['disk', 'logical', 'count', '2'],
      ],
    } as unknown as Facts;
    expect(candidateDisks(facts).map((d) => [d.name, d.vendor])).toEqual([
      ['sda', 'ATA'],
      ['vda', null],
    ]);
  });
});
