import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { HwTuple } from '../core/facts.js';
import { explainMatch } from './explain.js';
import { readHwText, readSpecsText } from './file-forms.js';
import { matchAll } from './matcher.js';

// The real eDeploy configuration and hardware lists (see /work/shared/fixtures/README.md).
// Every expected answer was worked out by reading the files (and agrees with eDeploy's
// matcher run under CPython on the same lists, values as strings).
const F = '/work/shared/fixtures';
const hwFiles = {
  kvm: 'edeploy-hw/edeploy_test_vm-kvm-52-54-12-34-00-03.hw',
  dell: 'edeploy-hw/PowerEdgeM520SKUNotProvidedModelNamePowerEdgeM520-DellInc-9K9PW02.hw',
  dl360: 'edeploy-hw/ProLiantDL360pGen8654081B21-HP-CZ3323FDVK.hw',
  wnn: 'hw-lists-hp-bl460c/ProLiantBL460cGen8641016B21-HP-CZ3404YWNN9c-b6-54-88-2d-b0.hw_',
  wnw: 'hw-lists-hp-bl460c/ProLiantBL460cGen8641016B21-HP-CZ3404YWNW9c-b6-54-88-9c-38.hw_',
} as const;
type Machine = keyof typeof hwFiles;
const profiles = ['backup', 'dell-m520-compute', 'devstack', 'hp', 'kvm-test', 'kvm-usb', 'vm-centos', 'vm-debian', 'vm'] as const;

const hw = (m: Machine): HwTuple[] => readHwText(readFileSync(`${F}/${hwFiles[m]}`, 'utf8'), { file: hwFiles[m] });
const specs = (p: string) => readSpecsText(readFileSync(`${F}/edeploy-config/${p}.specs`, 'utf8'), { file: `${p}.specs` });

const expected: Partial<Record<Machine, Partial<Record<(typeof profiles)[number], Record<string, string>>>>> = {
  kvm: {
    'kvm-test': {
      disk: 'vda',
      eth: 'eth0',
      mac: '52:54:12:34:00:01',
      'eth-io': 'eth1',
      'mac-io': '52:54:12:34:00:02',
      'eth-mgmt': 'eth2',
      'mac-mgmt': '52:54:12:34:00:03',
      'ipmi-fake-channel': '0',
    },
    'kvm-usb': { disk: 'vda', eth: 'eth0', mac: '52:54:12:34:00:01', 'eth-io': 'eth1', 'mac-io': '52:54:12:34:00:02', 'eth-mgmt': 'eth2', 'mac-mgmt': '52:54:12:34:00:03' },
  },
  dell: { devstack: { disk: 'sda', eth: 'eth0', mac: 'b8:2a:72:02:1b:01' } },
  dl360: { vm: { nbcpu: '8', disk: '1I:1:1', size: '300', disk2: '1I:1:2', size2: '300' } },
  wnn: { vm: { nbcpu: '32', disk: '1I:1:1', size: '300', disk2: '1I:1:2', size2: '300' } },
  wnw: { vm: { nbcpu: '32', disk: '1I:1:1', size: '300', disk2: '1I:1:2', size2: '300' } },
};

describe('every eDeploy profile against every real machine', () => {
  for (const machine of Object.keys(hwFiles) as Machine[]) {
    for (const profile of profiles) {
      const want = expected[machine]?.[profile];
      it(`${profile} ${want ? 'matches' : 'does not match'} ${machine}`, () => {
        const r = matchAll(specs(profile), hw(machine));
        expect(r).toEqual({ matched: want !== undefined, vars: want ?? {}, cmdbVars: {}, limitReached: false });
      });
    }
  }
});

describe('why the real profiles do not match', () => {
  it('the M520 compute profile wants PERC8 volumes of 1999 GB; this M520 has a 299 GB PERC H310', () => {
    const e = explainMatch(specs('dell-m520-compute'), hw('dell'));
    expect(e.failure).toMatchObject({ kind: 'no-candidate', specIndex: 9, spec: ['disk', '$perc8_1', 'size', '1999'], at: { file: 'dell-m520-compute.specs', line: 10, column: 2 } });
    expect(e.failure!.nearMisses[0]).toMatchObject({ line: ['disk', 'sda', 'size', '299'], position: 3 });
  });

  it('vm-centos wants a disk larger than 4 GB; the VM has exactly 4', () => {
    const e = explainMatch(specs('vm-centos'), hw('kvm'));
    expect(e.failure).toMatchObject({ specIndex: 0, kind: 'no-candidate' });
    expect(e.text).toContain("gt(4) is false for '4'");
  });

  it('vm wants two disks; the VM has one, already taken', () => {
    expect(explainMatch(specs('vm'), hw('kvm')).failure).toMatchObject({ kind: 'lines-taken', specIndex: 2 });
  });

  it('hp wants 100 GB disks; the DL360p has 300 GB ones', () => {
    const e = explainMatch(specs('hp'), hw('dl360'));
    expect(e.failure).toMatchObject({ specIndex: 0, kind: 'no-candidate' });
    expect(e.failure!.nearMisses.map((m) => m.line[1])).toEqual(['1I:1:1', '1I:1:2', '1I:1:3']);
  });
});

describe('specs written for the real machines', () => {
  it('backtracks on a BL460c to the NIC with the wanted MAC', () => {
    const r = matchAll(
      [
        ['network', '$eth', 'link', 'yes'],
        ['network', '$eth', 'driver', 'be2net'],
        ['network', '$eth', 'serial', '9c:b6:54:88:2d:b4'],
      ],
      hw('wnn'),
    );
    expect(r.vars).toEqual({ eth: 'eth1' });
  });

  it('backtracks on the DL360p past two down NICs, binding a $$ variable through a function', () => {
    const r = matchAll(
      [
        ['network', '$eth', 'link', 'no'],
        ['network', '$eth', 'vendor', 'Broadcom Corporation'],
        ['network', '$eth', 'serial', '$$mac=regexp(:ff$)'],
      ],
      hw('dl360'),
    );
    expect(r).toMatchObject({ matched: true, vars: { eth: 'eth3', mac: 'd8:9d:67:1a:d0:ff' }, cmdbVars: { mac: 'd8:9d:67:1a:d0:ff' } });
  });

  it('matches values the hardware reported as numbers (decision 8)', () => {
    expect(matchAll([['memory', 'banks', 'count', '16']], hw('wnn')).matched).toBe(true);
    expect(
      matchAll(
        [
          ['cpu', 'physical', 'number', '2'],
          ['system', 'ipmi', 'channel', '$ipmi'],
          ['cpu', 'logical_7', 'loops_per_sec', 'gt(399)'],
        ],
        hw('dl360'),
      ).vars,
    ).toEqual({ ipmi: '2' });
  });

  it('follows disk ids the BL460c reports twice (a SAS and a SATA disk share 1I:1:1)', () => {
    const wanted: HwTuple[] = [
      ['system', 'product', 'serial', '$$serial'],
      ['cpu', 'logical', 'number', 'ge(32)'],
      ['memory', 'banks', 'count', '16'],
      ['disk', '$d1', 'type', 'SATA'],
      ['disk', '$d1', 'size', '1000'],
      ['disk', '$d2', 'type', 'SATA'],
      ['disk', '$d2', 'size', '1000'],
      ['disk', '$d2', 'slot', '$slot'],
      ['network', '$eth', 'ipv4', 'network(10.29.99.0/24)'],
      ['network', '$eth', 'serial', '$mac'],
    ];
    expect(matchAll(wanted, hw('wnw'))).toEqual({
      matched: true,
      vars: { serial: 'CZ3404YWNW', d1: '1I:1:1', d2: '1I:1:2', slot: '0', eth: 'eth0', mac: '9c:b6:54:88:9c:38' },
      cmdbVars: { serial: 'CZ3404YWNW' },
      limitReached: false,
    });
    // The other blade has no SATA disk: no match, and nothing bound (decision 5).
    expect(matchAll(wanted, hw('wnn'))).toEqual({ matched: false, vars: {}, cmdbVars: {}, limitReached: false });
  });
});
