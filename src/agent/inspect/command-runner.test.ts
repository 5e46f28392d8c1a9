import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { nodeCommandRunner } from './command-runner.js';

describe('nodeCommandRunner (real processes)', () => {
  const run = nodeCommandRunner({ timeoutMs: 5_000 });

  it('returns stdout of a command that succeeds', async () => {
    expect(await run('sh', ['-c', 'echo "Speed: 1000Mb/s"'])).toEqual({ ok: true, stdout: 'Speed: 1000Mb/s\n' });
  });

  it('runs tools in the C locale', async () => {
    expect(await run('sh', ['-c', 'echo "$LC_ALL"'])).toEqual({ ok: true, stdout: 'C\n' });
  });

  it('reports a tool that is not installed as missing', async () => {
    const result = await run('plinth-no-such-tool', []);
    expect(result).toMatchObject({ ok: false, reason: 'missing', exitCode: null });
  });

  it('reports a non-zero exit with its status and stderr', async () => {
    const result = await run('sh', ['-c', 'echo partial; echo "/dev/mem: No such file or directory" >&2; exit 3']);
    expect(result).toEqual({
      ok: false,
      reason: 'failed',
      exitCode: 3,
      stdout: 'partial\n',
      stderr: '/dev/mem: No such file or directory\n',
      message: 'sh exited with status 3',
    });
  });

  it('kills a command that outlives its timeout', async () => {
    const quick = nodeCommandRunner({ timeoutMs: 200 });
    // A command that never ends on its own: the call returning at all is the timeout at work.
    const result = await quick('sleep', ['86412']);
    expect(result).toMatchObject({ ok: false, reason: 'timeout', message: 'sleep did not finish within 200 ms' });
    expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })).not.toContain('sleep 86412');
  });

  it('passes arguments without a shell', async () => {
    expect(await run('echo', ['$HOME', '; true'])).toEqual({ ok: true, stdout: '$HOME ; true\n' });
  });
});
