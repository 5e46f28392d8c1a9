import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runTool } from './tool-process.js';

const ctx = (timeoutMs: number) => ({ timeoutMs });

describe('runTool', () => {
  it('kills a tool that outlives its timeout and reports a timeout', async () => {
    // A tool that never ends on its own: the call returning at all is the timeout at work.
    await expect(runTool({ provider: 'ipmi', command: 'sleep', args: ['86411'], ctx: ctx(200) })).rejects.toMatchObject({ failure: 'timeout' });
    expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })).not.toContain('sleep 86411');
  });

  it('passes only a minimal environment plus what the caller gives (secrets stay out of argv)', async () => {
    process.env['PLINTH_UNRELATED_SECRET'] = 'leak-me-not';
    try {
      const r = await runTool({ provider: 'ipmi', command: 'env', args: [], env: { IPMI_PASSWORD: 'only-here' }, ctx: ctx(5_000), secrets: ['only-here'] });
      expect(r.stdout).not.toContain('leak-me-not');
      expect(r.stdout).toContain('IPMI_PASSWORD=***');
      expect(r.stdout).toContain('LANG=C');
    } finally {
      delete process.env['PLINTH_UNRELATED_SECRET'];
    }
  });

  it('a missing tool is unsupported, naming it', async () => {
    await expect(runTool({ provider: 'libvirt', command: 'no-such-virsh-here', args: [], ctx: ctx(1_000) })).rejects.toThrow(/libvirt: no-such-virsh-here is not installed/);
  });

  it('honours the caller abort signal', async () => {
    const controller = new AbortController();
    const run = runTool({ provider: 'ipmi', command: 'sleep', args: ['5'], ctx: { timeoutMs: 10_000, signal: controller.signal } });
    setTimeout(() => controller.abort(new Error('shutdown')), 50);
    await expect(run).rejects.toThrow(/cancelled/);
  });
});
