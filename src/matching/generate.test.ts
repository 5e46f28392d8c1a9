import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { expandModel, stringRange } from './generate.js';
import { readCmdbText } from './file-forms.js';
import { PyTuple, type PyDict } from './python-values.js';

// Range expectations were checked against eDeploy's generate.py under CPython 3.11.
const values = (s: string): string[] | null => {
  const r = stringRange(s);
  return r ? [...r] : null;
};

describe('stringRange: names', () => {
  it.each([
    ['host03-07', ['host03', 'host04', 'host05', 'host06', 'host07']],
    ['node1-2.example.com', ['node1.example.com', 'node2.example.com']],
    ['r1-2-h10-11', ['r1-h10-11', 'r2-h10-11']],
    ['x1-3:5-6y', ['x1y', 'x2y', 'x3y', 'x5y', 'x6y']],
    ['1-3:a-b', ['1:a-b', '2:a-b', '3:a-b']],
    ['1-3:5', ['1:5', '2:5', '3:5']],
    ['host1-3\n', ['host1', 'host2', 'host3']],
  ])('%j', (text, expected) => {
    expect(values(text)).toEqual(expected);
  });

  it('expands only the first range in a name', () => {
    expect(values('os-ci-test1-12')).toEqual(Array.from({ length: 12 }, (_, i) => `os-ci-test${i + 1}`));
  });

  it('takes zero padding from the start literal alone', () => {
    expect(values('08-11')).toEqual(['08', '09', '10', '11']);
    expect(values('9-11')).toEqual(['9', '10', '11']);
    expect(values('010-008')).toEqual(['010', '009', '008']);
    expect(values('0-2')).toEqual(['0', '1', '2']);
    expect(values('h001-3')).toEqual(['h001', 'h002', 'h003']);
    expect(values('h1-003')).toEqual(['h1', 'h2', 'h3']);
  });

  it('counts down when start is above stop, both ends included', () => {
    expect(values('94-90')).toEqual(['94', '93', '92', '91', '90']);
    expect(values('6-5')).toEqual(['6', '5']);
    expect(values('5-5')).toEqual(['5']);
  });

  it('leaves strings without a digit range constant', () => {
    expect(values('hostname')).toBeNull();
    expect(values('D7-H.1.0.0')).toBeNull();
    expect(values('255.255.255.0')).toBeNull();
    expect(values('a\nb1-3')).toBeNull();
  });

  it('handles ranges too large to list, lazily', () => {
    const it = stringRange('n1-99999999999999999999')![Symbol.iterator]();
    expect([it.next().value, it.next().value]).toEqual(['n1', 'n2']);
  });
});

describe('stringRange: IPv4 addresses', () => {
  it('expands the last octet', () => {
    expect(values('192.168.122.3-7')).toEqual(['192.168.122.3', '192.168.122.4', '192.168.122.5', '192.168.122.6', '192.168.122.7']);
  });

  it('takes the cartesian product of octet ranges, the first octet slowest', () => {
    const all = values('10.0.1-2.2-254')!;
    expect(all).toHaveLength(506);
    expect([all[0], all[252], all[253], all[505]]).toEqual(['10.0.1.2', '10.0.1.254', '10.0.2.2', '10.0.2.254']);
    expect(values('1-2.0.0.1-2')).toEqual(['1.0.0.1', '1.0.0.2', '2.0.0.1', '2.0.0.2']);
  });

  it('joins ranges with colons, counting down where asked', () => {
    expect(values('10.0.2.1-3:5-5:7-9')).toEqual(['10.0.2.1', '10.0.2.2', '10.0.2.3', '10.0.2.5', '10.0.2.7', '10.0.2.8', '10.0.2.9']);
    expect(values('10.0.2.1-5:20-15')).toEqual(['10.0.2.1', '10.0.2.2', '10.0.2.3', '10.0.2.4', '10.0.2.5', '10.0.2.20', '10.0.2.19', '10.0.2.18', '10.0.2.17', '10.0.2.16', '10.0.2.15']);
    expect(values('10.0.0.1-3\n')).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  });

  it('refuses a range without a start instead of crashing', () => {
    expect(values('10.0.0.-5')).toBeNull();
    expect(() => values('10.0-1.0.-5')).toThrow(/has no start/);
  });
});

describe('expandModel', () => {
  it('expands the README example', () => {
    expect(expandModel({ ip: '192.168.122.3-7', hostname: 'host03-07' })).toEqual([
      { ip: '192.168.122.3', hostname: 'host03' },
      { ip: '192.168.122.4', hostname: 'host04' },
      { ip: '192.168.122.5', hostname: 'host05' },
      { ip: '192.168.122.6', hostname: 'host06' },
      { ip: '192.168.122.7', hostname: 'host07' },
    ]);
  });

  it('stops at the shortest range and copies constants', () => {
    const entries = expandModel({ ip: '10.0.2.3-253', netmask: '255.255.255.0', hostname: 'kvm1-3', used: 0 });
    expect(entries).toEqual([
      { ip: '10.0.2.3', netmask: '255.255.255.0', hostname: 'kvm1', used: 0 },
      { ip: '10.0.2.4', netmask: '255.255.255.0', hostname: 'kvm2', used: 0 },
      { ip: '10.0.2.5', netmask: '255.255.255.0', hostname: 'kvm3', used: 0 },
    ]);
  });

  it('enumerates lists and tuples alike (decision 1)', () => {
    const model = { tag: new PyTuple(['TAG1', 'TAG2', 'TAG3']), ip: '192.168.122.3-5', hostname: 'host3-5', role: ['a', 'b', 'c', 'd'] };
    expect(expandModel(model)).toEqual([
      { tag: 'TAG1', ip: '192.168.122.3', hostname: 'host3', role: 'a' },
      { tag: 'TAG2', ip: '192.168.122.4', hostname: 'host4', role: 'b' },
      { tag: 'TAG3', ip: '192.168.122.5', hostname: 'host5', role: 'c' },
    ]);
  });

  it('copies a $const value unchanged into every entry', () => {
    const entries = expandModel({ host: 'h1-2', dns: { $const: ['8.8.8.8', '1.1.1.1'] } });
    expect(entries).toEqual([
      { host: 'h1', dns: ['8.8.8.8', '1.1.1.1'] },
      { host: 'h2', dns: ['8.8.8.8', '1.1.1.1'] },
    ]);
    expect(entries[0]!.dns).not.toBe(entries[1]!.dns);
    expect(() => expandModel({ a: { $const: 1, b: 2 } })).toThrow(/only key/);
  });

  it('expands nested dicts in step with the rest (decision 5)', () => {
    const model: PyDict = { host: 'h1-3', bmc: { ip: '10.0.0.1-9', user: 'root' } };
    expect(expandModel(model)).toEqual([
      { host: 'h1', bmc: { ip: '10.0.0.1', user: 'root' } },
      { host: 'h2', bmc: { ip: '10.0.0.2', user: 'root' } },
      { host: 'h3', bmc: { ip: '10.0.0.3', user: 'root' } },
    ]);
    // The nested range alone sets the length too, and the model is not modified.
    expect(expandModel({ name: 'x', bmc: { ip: '10.0.0.1-2' } })).toHaveLength(2);
    expect(model).toEqual({ host: 'h1-3', bmc: { ip: '10.0.0.1-9', user: 'root' } });
  });

  it('yields exactly one entry for a model with no range or list (decision 6)', () => {
    expect(expandModel({ a: 1, hostname: 'backup-X', t: new PyTuple([]) as never })).toHaveLength(0);
    expect(expandModel({ a: 1, hostname: 'backup-X', f: true, n: null })).toEqual([{ a: 1, hostname: 'backup-X', f: true, n: null }]);
    expect(expandModel({})).toEqual([{}]);
  });

  it('yields no entry when a list is empty', () => {
    expect(expandModel({ ip: '10.0.0.1-3', tag: [] })).toEqual([]);
  });

  it('refuses models that expand too far', () => {
    expect(() => expandModel({ ip: '10.0-255.0-255.0-255' }, { maxEntries: 1000 })).toThrow(/more than 1000 entries/);
    expect(expandModel({ ip: '10.0.0-255.0-255' })).toHaveLength(65536);
  });
});

describe('the eDeploy CMDB fixtures', () => {
  const dir = '/work/shared/fixtures/edeploy-config';
  const read = (name: string) => readCmdbText(readFileSync(`${dir}/${name}`, 'utf8'), { file: name });

  it('hp.cmdb gives hpceph1..10 on 10.66.6.100-109', () => {
    const { form, entries } = read('hp.cmdb');
    expect(form).toBe('generate');
    expect(entries).toHaveLength(10);
    expect(entries[0]).toEqual({
      gateway: '10.66.6.1',
      ip: '10.66.6.100',
      netmask: '255.255.255.0',
      'gateway-io': '192.168.1.254',
      'ip-io': '192.168.1.100',
      'netmask-io': '255.255.255.0',
      'gateway-ipmi': '10.66.6.1',
      'ip-ipmi': '10.66.6.110',
      'netmask-ipmi': '255.255.255.0',
      hostname: 'hpceph1',
    });
    expect(entries[9]).toMatchObject({ ip: '10.66.6.109', 'ip-io': '192.168.1.109', 'ip-ipmi': '10.66.6.119', hostname: 'hpceph10' });
  });

  it('kvm-test.cmdb stops at its three host names', () => {
    expect(read('kvm-test.cmdb').entries.map((e) => [e.hostname, e.ip, e['ip-mgmt']])).toEqual([
      ['kvm1', '10.0.2.3', '192.168.1.1'],
      ['kvm2', '10.0.2.4', '192.168.1.2'],
      ['kvm3', '10.0.2.5', '192.168.1.3'],
    ]);
  });

  it('dell-m520-compute.cmdb gives pod1..3', () => {
    expect(read('dell-m520-compute.cmdb').entries.map((e) => [e.hostname, e.ip0, e.ip1, e.ip3])).toEqual([
      ['pod1', '10.142.32.200', '192.168.1.100', '10.66.6.200'],
      ['pod2', '10.142.32.201', '192.168.1.101', '10.66.6.201'],
      ['pod3', '10.142.32.202', '192.168.1.102', '10.66.6.202'],
    ]);
  });

  it('vm-centos.cmdb and vm-debian.cmdb give 49 and 9 entries', () => {
    const centos = read('vm-centos.cmdb').entries;
    expect(centos).toHaveLength(49);
    expect(centos[48]).toEqual({ ip: '192.168.122.50', netmask: '255.255.255.0', gateway: '192.168.122.1', hostname: 'node50' });
    expect(read('vm-debian.cmdb').entries.map((e) => e.ip)).toEqual(Array.from({ length: 9 }, (_, i) => `192.168.122.${i + 2}`));
  });

  it('backup.cmdb, with no range at all, gives one entry (decision 6)', () => {
    expect(read('backup.cmdb').entries).toEqual([
      { gateway: 'gateway', ip: 'ip', netmask: 'netmask', 'gateway-ipmi': 'gateway-ipmi', 'ip-ipmi': 'ip-ipmi', 'netmask-ipmi': 'netmask-ipmi', hostname: 'backup-X' },
    ]);
  });

  it('hp-mlx-ctrl.cmdb, an expanded list, is read as it is', () => {
    const { form, entries } = read('hp-mlx-ctrl.cmdb');
    expect(form).toBe('list');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ hostname: 'hpcimlx001', 'ipmi-channel': 2, used: 1 });
  });

  it('the JSON conversions expand to the same entries', () => {
    for (const name of ['hp', 'hp-mlx', 'kvm-test', 'kvm-usb', 'vm-centos', 'vm-debian', 'dell-m520-compute', 'backup', 'hp-mlx-ctrl']) {
      expect(read(`${name}.cmdb.json`).entries).toEqual(read(`${name}.cmdb`).entries);
    }
  });
});
