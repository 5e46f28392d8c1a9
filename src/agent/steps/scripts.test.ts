import { describe, expect, it } from 'vitest';
import type { ScriptResult } from '../../protocol/agent.js';
import { RAID1_EXAMPLE } from '../../protocol/disk-layout.js';
import { StepError } from './errors.js';
import { runScripts, scriptDiskLayout, type ScriptRan } from './scripts.js';

const ran = (name: string, files: Record<string, string>, truncated = false): ScriptRan => ({
  name,
  result: {
    exitCode: 0,
    timedOut: false,
    durationMs: 1,
    output: '',
    files: Object.entries(files).map(([n, c]) => ({ name: n, sizeBytes: c.length, content: Buffer.from(c).toString('base64'), truncated })),
  } satisfies ScriptResult,
});

describe('a configure script computing the disk layout', () => {
  it('runs the real scripts and takes the layout the last one left in its output directory', async () => {
    const layoutScript = `#!/bin/sh\nprintf '%s' '${JSON.stringify(RAID1_EXAMPLE)}' > "$PLINTH_OUTPUT_DIR/disk-layout.json"\n`;
    const results = await runScripts(
      [
        { name: 'first', content: '#!/bin/sh\necho hi\n', timeoutSeconds: 30 },
        { name: 'layout', content: layoutScript, timeoutSeconds: 30 },
      ],
      {},
      { log: () => undefined, report: async () => undefined },
    );
    expect(results.map((r) => r.name)).toEqual(['first', 'layout']);
    expect(scriptDiskLayout(results)).toEqual({ script: 'layout', layout: RAID1_EXAMPLE });
    expect(scriptDiskLayout(results.slice(0, 1))).toBeNull();
  });

  it('names the script and the field when the file is not a layout', () => {
    const failure = (r: ScriptRan) => {
      try {
        scriptDiskLayout([r]);
      } catch (e) {
        expect(e).toBeInstanceOf(StepError);
        expect((e as StepError).step).toBe(`script-${r.name}`);
        return (e as Error).message;
      }
      throw new Error('no failure');
    };
    expect(failure(ran('raid', { 'disk-layout.json': '{nope' }))).toMatch(/^script\[raid\]\.disk-layout\.json is not JSON/);
    expect(failure(ran('raid', { 'disk-layout.json': '{}' }, true))).toMatch(/^script\[raid\]\.disk-layout\.json is larger than/);
    const noRoot = { disks: [{ partitions: [{ id: 'a', use: 'swap' }] }] };
    expect(failure(ran('raid', { 'disk-layout.json': JSON.stringify(noRoot) }))).toBe('script[raid].disk-layout.json.disks no file system is mounted at /');
    const badMember = structuredClone(RAID1_EXAMPLE);
    badMember.raid![0]!.members[1] = 'nope';
    expect(failure(ran('raid', { 'disk-layout.json': JSON.stringify(badMember) }))).toMatch(/^script\[raid\]\.disk-layout\.json\.raid\[0\]\.members\[1\] .*not a partition/);
    expect(failure(ran('x', { 'disk-layout.json': JSON.stringify({ disks: 'one' }) }))).toMatch(/^script\[x\]\.disk-layout\.json\.disks /);
  });
});
