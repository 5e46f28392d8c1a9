import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatCmdb, formatForPath, formatState, readCmdbText, readHwText, readSpecsText, readStateText } from './file-forms.js';
import { SourceError } from './source-error.js';

const F = '/work/shared/fixtures';
const read = (path: string) => readFileSync(path, 'utf8');

function errorOf(fn: () => unknown): SourceError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SourceError) return e;
    throw e;
  }
  throw new Error('expected a SourceError');
}

describe('formatForPath', () => {
  it('picks the form from the file name', () => {
    expect(formatForPath('a/hp.specs')).toBe('python');
    expect(formatForPath('a/state')).toBe('python');
    expect(formatForPath('x.hw_')).toBe('python');
    expect(formatForPath('x.HW.JSON')).toBe('json');
    expect(formatForPath('pool.yml')).toBe('yaml');
    expect(formatForPath('pool.yaml')).toBe('yaml');
  });
});

describe('readHwText', () => {
  const lists = [
    'edeploy-hw/edeploy_test_vm-kvm-52-54-12-34-00-03.hw',
    'edeploy-hw/PowerEdgeM520SKUNotProvidedModelNamePowerEdgeM520-DellInc-9K9PW02.hw',
    'edeploy-hw/ProLiantDL360pGen8654081B21-HP-CZ3323FDVK.hw',
    'hw-lists-hp-bl460c/ProLiantBL460cGen8641016B21-HP-CZ3404YWNN9c-b6-54-88-2d-b0.hw_',
    'hw-lists-hp-bl460c/ProLiantBL460cGen8641016B21-HP-CZ3404YWNW9c-b6-54-88-9c-38.hw_',
  ];

  it.each(lists)('reads %s as its JSON conversion says, values as strings', (name) => {
    const fromPython = readHwText(read(`${F}/${name}`), { file: name });
    const fromJson = readHwText(read(`${F}/${name}.json`), { file: `${name}.json` });
    const oracle = (JSON.parse(read(`${F}/${name}.json`)) as unknown[][]).map((t) => t.map((v) => String(v)));
    expect(fromPython).toEqual(oracle);
    expect(fromJson).toEqual(oracle);
  });

  it('has the sizes of the real lists', () => {
    expect(lists.map((name) => readHwText(read(`${F}/${name}`)).length)).toEqual([36, 179, 202, 527, 551]);
  });

  it('normalises numbers to their Python string form (decision 8)', () => {
    const dl = readHwText(read(`${F}/${lists[2]}`));
    expect(dl).toContainEqual(['cpu', 'physical', 'number', '2']);
    expect(dl).toContainEqual(['system', 'ipmi', 'channel', '2']);
    expect(readHwText("[('cpu', 'physical_0', 'min_Mhz', 1200.0), ('a', 'b', 'c', 18446744073709551615), ('a', 'b', 'd', True), ('a', 'b', 'e', None)]")).toEqual([
      ['cpu', 'physical_0', 'min_Mhz', '1200.0'],
      ['a', 'b', 'c', '18446744073709551615'],
      ['a', 'b', 'd', 'True'],
      ['a', 'b', 'e', 'None'],
    ]);
    expect(readHwText('[["cpu", "physical_0", "min_Mhz", 1200.0], ["cpu", "physical", "number", 2]]', { format: 'json' })).toEqual([
      ['cpu', 'physical_0', 'min_Mhz', '1200.0'],
      ['cpu', 'physical', 'number', '2'],
    ]);
  });

  it.each([
    ["{'a': 1}", 1, 1, 'must be a list of 4-element tuples'],
    ["[('a', 'b', 'c')]", 1, 2, 'has 3 elements, 4 are expected'],
    ["[('a', 'b', 'c', ['d'])]", 1, 18, 'values must be strings or numbers'],
    ["['abcd']", 1, 2, 'must be a 4-element tuple'],
  ])('refuses %j at %i:%i', (text, line, column, reason) => {
    const e = errorOf(() => readHwText(text, { file: 'm.hw' }));
    expect(e.reason).toContain(reason);
    expect([e.file, e.line, e.column]).toEqual(['m.hw', line, column]);
  });
});

describe('readSpecsText', () => {
  it('reads a spec list with the position of each rule', () => {
    const rules = readSpecsText(read(`${F}/edeploy-config/vm.specs`), { file: 'vm.specs' });
    expect(rules).toEqual([
      { tuple: ['cpu', 'logical', 'number', '$nbcpu'], at: { file: 'vm.specs', line: 4, column: 5 } },
      { tuple: ['disk', '$disk', 'size', '$size'], at: { file: 'vm.specs', line: 5, column: 5 } },
      { tuple: ['disk', '$disk2', 'size', '$size2'], at: { file: 'vm.specs', line: 6, column: 5 } },
    ]);
  });

  it.each(['backup', 'dell-m520-compute', 'devstack', 'hp', 'kvm-test', 'kvm-usb', 'vm-centos', 'vm-debian', 'vm'])('%s.specs reads as its JSON conversion', (name) => {
    const py = readSpecsText(read(`${F}/edeploy-config/${name}.specs`)).map((r) => r.tuple);
    expect(py).toEqual(JSON.parse(read(`${F}/edeploy-config/${name}.specs.json`)));
    expect(readSpecsText(read(`${F}/edeploy-config/${name}.specs.json`), { format: 'json' }).map((r) => r.tuple)).toEqual(py);
  });

  it('turns numbers in specs into strings too', () => {
    expect(readSpecsText("[('cpu', 'logical', 'number', 8)]")[0]!.tuple).toEqual(['cpu', 'logical', 'number', '8']);
  });

  it.each(['hp-mlx.specs', 'hp-mlx-ctrl.specs'])('refuses the malformed %s at 22:5', (name) => {
    const file = `${F}/edeploy-config/${name}`;
    const e = errorOf(() => readSpecsText(read(file), { file }));
    expect([e.file, e.line, e.column]).toEqual([file, 22, 5]);
  });
});

describe('readCmdbText', () => {
  it('reads a list, generate(), and the JSON and YAML forms', () => {
    expect(readCmdbText("[{'ip': '10.0.0.1'}]")).toEqual({ form: 'list', entries: [{ ip: '10.0.0.1' }] });
    expect(readCmdbText("generate({'ip': '10.0.0.1-2'})").entries).toEqual([{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }]);
    expect(readCmdbText('{"$generate": {"ip": "10.0.0.1-2", "dns": {"$const": ["a", "b"]}}}', { format: 'json' }).entries).toEqual([
      { ip: '10.0.0.1', dns: ['a', 'b'] },
      { ip: '10.0.0.2', dns: ['a', 'b'] },
    ]);
    const yaml = '$generate:\n  tag: [T1, T2]\n  ip: 10.0.0.1-9\n  dns:\n    $const: [a, b]\n';
    expect(readCmdbText(yaml, { format: 'yaml' })).toMatchObject({
      form: 'generate',
      entries: [
        { tag: 'T1', ip: '10.0.0.1', dns: ['a', 'b'] },
        { tag: 'T2', ip: '10.0.0.2', dns: ['a', 'b'] },
      ],
    });
    expect(readCmdbText('- {ip: 10.0.0.1, used: 1}\n', { format: 'yaml' }).entries).toEqual([{ ip: '10.0.0.1', used: 1 }]);
    expect(readCmdbText('[]')).toEqual({ form: 'list', entries: [] });
  });

  it.each([
    ["['a']", 1, 2, 'CMDB entry 1 must be a dict'],
    ["generate(['a'])", 1, 10, 'a CMDB model must be a dict'],
    ["generate({}, '=')", 1, 1, 'generate() takes one dict argument'],
    ["'x'", 1, 1, 'a CMDB must be a list of entries or a generate model'],
    ["generate({'a': {'$const': 1, 'b': 2}})", 1, 1, 'must be the only key'],
    ["generate({'ip': '10.0-1.0.-5'})", 1, 1, 'has no start'],
  ])('refuses %j', (text, line, column, reason) => {
    const e = errorOf(() => readCmdbText(text, { file: 'p.cmdb' }));
    expect(e.reason).toContain(reason);
    expect([e.line, e.column]).toEqual([line, column]);
  });
});

describe('state', () => {
  it('reads the fixture state, in Python and JSON', () => {
    const expected = [
      { profile: 'hp', count: 0 },
      { profile: 'vm', count: 0 },
      { profile: 'vm-centos', count: 0 },
      { profile: 'kvm-test', count: 0 },
    ];
    expect(readStateText(read(`${F}/edeploy-config/state`))).toEqual(expected);
    expect(readStateText(read(`${F}/edeploy-config/state.json`), { format: 'json' })).toEqual(expected);
  });

  it("keeps string counts as written and accepts '*'", () => {
    expect(readStateText("[('hp', '4'), ('vm', '*'), ['x', 2]]")).toEqual([
      { profile: 'hp', count: '4' },
      { profile: 'vm', count: '*' },
      { profile: 'x', count: 2 },
    ]);
  });

  it.each([
    ["[('hp', 'lots')]", 1, 9, "the count of 'hp' must be"],
    ["[('hp', 1, 2)]", 1, 2, 'must be a (profile, count) pair'],
    ['[(1, 1)]', 1, 3, 'a profile name must be a string'],
    ["('hp', 1)", 1, 2, 'must be a (profile, count) pair'],
  ])('refuses %j', (text, line, column, reason) => {
    const e = errorOf(() => readStateText(text, { file: 'state' }));
    expect(e.reason).toContain(reason);
    expect([e.line, e.column]).toEqual([line, column]);
  });

  it('writes state and CMDB as eDeploy does, and reads them back', () => {
    const state = [
      { profile: 'hp', count: 3 },
      { profile: 'vm', count: '*' },
    ];
    expect(formatState(state)).toBe("[('hp', 3), ('vm', '*')]\n");
    expect(readStateText(formatState(state))).toEqual(state);
    const entries = readCmdbText(read(`${F}/edeploy-config/kvm-test.cmdb`)).entries;
    expect(readCmdbText(formatCmdb(entries))).toEqual({ form: 'list', entries });
  });
});
