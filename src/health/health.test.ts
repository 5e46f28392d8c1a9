import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compareHealth, median } from './compare.js';
import { healthMetrics, parseHealthFiles } from './parse.js';
import { healthParams, healthScript, HEALTH_SCRIPT_NAME } from './script.js';

/** Real outputs of the health script on a 2-CPU machine (test/fixtures/health/README.md). */
const fixture = (name: string) => readFileSync(new URL(`../../test/fixtures/health/${name}`, import.meta.url), 'utf8');
const files = Object.fromEntries(['cpu.txt', 'memory.txt', 'disk.txt', 'cpuinfo.txt'].map((f) => [f, fixture(f)]));

describe('health figures from sysbench and fio', () => {
  it("reads every figure as the eDeploy tuples redhat-cip/hardware's benchmarks write", () => {
    const { tuples, problems } = parseHealthFiles(files);
    expect(problems).toEqual([]);
    const keys = tuples.map(([c, id, k]) => `${c}/${id}/${k}`);
    expect(keys).toEqual([
      'cpu/logical_0/bogomips',
      'cpu/logical_1/bogomips',
      'cpu/logical_0/loops_per_sec',
      'cpu/logical_1/loops_per_sec',
      'cpu/logical/loops_per_sec',
      'cpu/logical_0/bandwidth_1M',
      'cpu/logical/threaded_bandwidth_1M',
      'disk/loop0/standalone_read_1M_KBps',
      'disk/loop0/standalone_read_1M_IOps',
      'disk/loop0/standalone_randread_4k_KBps',
      'disk/loop0/standalone_randread_4k_IOps',
    ]);
    // The values are the tools' own: events over the run's time, MiB/s, fio's KiB/s and IOPS.
    const events = Number(/== cpu 0[\s\S]*?total number of events:\s+(\d+)/.exec(files['cpu.txt']!)![1]);
    const time = Number(/== cpu 0[\s\S]*?total time:\s+([\d.]+)s/.exec(files['cpu.txt']!)![1]);
    expect(tuples.find(([c, id, k]) => c === 'cpu' && id === 'logical_0' && k === 'loops_per_sec')![3]).toBe(String(Math.round(events / time)));
    const read = JSON.parse(files['disk.txt']!.slice(files['disk.txt']!.indexOf('{'), files['disk.txt']!.indexOf('== disk loop0 randread'))).jobs[0].read;
    expect(tuples.find(([, , k]) => k === 'standalone_read_1M_KBps')![3]).toBe(String(read.bw));
    for (const [, , , v] of tuples) expect(Number(v)).toBeGreaterThan(0);
    expect(Object.keys(healthMetrics(tuples))).toHaveLength(tuples.length);
  });

  it('says what it could not read instead of inventing a figure', () => {
    const broken = parseHealthFiles({ 'cpu.txt': '== cpu 0\nsysbench: command failed\n', 'disk.txt': '== disk sda read 1M\nfio: /dev/sda: Permission denied\n' });
    expect(broken.tuples).toEqual([]);
    expect(broken.problems).toEqual(['cpu 0: no sysbench result', 'disk sda read 1M: no fio result']);
    expect(parseHealthFiles({}).problems).toEqual(['no cpu.txt: the health script did not get to the CPU check']);
  });
});

describe('comparing the machines of a profile', () => {
  it('flags a machine below median − k·MAD and more than minDrop below the median, on that figure only', () => {
    const figures = {
      'node-1': { cpu: 1000, disk: 500 },
      'node-2': { cpu: 1010, disk: 505 },
      'node-3': { cpu: 990, disk: 498 },
      'node-4': { cpu: 1005, disk: 200 },
      'node-5': { cpu: 995, disk: 502 },
    };
    const c = compareHealth(figures);
    expect(c.outliers).toEqual({ 'node-4': ['disk'] });
    const disk = c.figures.find((f) => f.figure === 'disk')!;
    expect(disk.median).toBe(500);
    expect(disk.mad).toBeCloseTo(1.4826 * 2);
    expect(disk.threshold).toBeCloseTo(500 - 3 * 1.4826 * 2);
  });

  it('does not flag identical machines for a small wobble (MAD 0), nor anyone with fewer than three machines', () => {
    expect(compareHealth({ a: { cpu: 100 }, b: { cpu: 100 }, c: { cpu: 100 }, d: { cpu: 97 } }).outliers).toEqual({});
    expect(compareHealth({ a: { cpu: 100 }, b: { cpu: 100 }, c: { cpu: 100 }, d: { cpu: 50 } }).outliers).toEqual({ d: ['cpu'] });
    const two = compareHealth({ a: { cpu: 100 }, b: { cpu: 10 } });
    expect(two.outliers).toEqual({});
    expect(two.figures[0]!.threshold).toBeNull();
    // A faster machine is never an outlier: higher is better.
    expect(compareHealth({ a: { cpu: 100 }, b: { cpu: 100 }, c: { cpu: 100 }, d: { cpu: 500 } }).outliers).toEqual({});
    expect(median([3, 1, 2, 10])).toBe(2.5);
  });
});

describe('the health script', () => {
  it('fills in defaults and refuses bad parameters, naming the field', () => {
    expect(healthParams()).toEqual({ cpuSeconds: 10, memorySeconds: 5, diskSeconds: 10 });
    expect(healthParams({ cpuSeconds: 1, diskSeconds: 0 })).toEqual({ cpuSeconds: 1, memorySeconds: 5, diskSeconds: 0 });
    expect(() => healthParams({ cpuSeconds: 0 })).toThrow(/^cpuSeconds: /);
    expect(() => healthParams({ diskSeconds: 1.5 })).toThrow(/^diskSeconds: /);
    expect(() => healthParams({ disks: ['sda', '../etc/passwd'] })).toThrow(/^disks\[1\]: /);
  });

  it('only reads disks (fio --readonly, O_DIRECT), and carries its figures in its text', () => {
    const s = healthScript(healthParams({ cpuSeconds: 2, memorySeconds: 3, diskSeconds: 4, disks: ['vda', 'vdb'] }));
    expect(s.name).toBe(HEALTH_SCRIPT_NAME);
    expect(s.content.startsWith('#!/bin/sh\n')).toBe(true);
    expect(s.content).toContain('CPU_SECONDS=2\nMEMORY_SECONDS=3\nDISK_SECONDS=4\nDISKS="vda vdb"\n');
    const fio = s.content.split('\n').filter((l) => l.includes('fio --'));
    expect(fio).toHaveLength(1);
    expect(fio[0]).toContain('--readonly');
    expect(fio[0]).toContain('--direct=1');
    expect(s.content).not.toMatch(/--rw="?(write|randwrite|rw|randrw)/);
    expect(s.timeoutSeconds).toBeGreaterThan(2 * 257);
  });
});
