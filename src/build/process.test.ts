import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { isPlinthError } from '../core/errors.js';
import { outputOf, runTool, startTool } from './process.js';

const dir = mkdtempSync(join(tmpdir(), 'plinth-build-process-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `check` holds (the test's own timeout is the limit). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await sleep(20);
}

/** Alive and not a zombie: an orphan killed with its group may linger unreaped for a moment. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** A shell that starts a grandchild (sleep), writes its pid to a file and waits on it. */
function withGrandchild(name: string): { args: string[]; grandchild: () => Promise<number> } {
  const pidFile = join(dir, `${name}.pid`);
  return {
    args: ['-c', `sleep 300 & echo $! > ${pidFile}.tmp && mv ${pidFile}.tmp ${pidFile}; wait`],
    grandchild: async () => {
      await until(() => existsSync(pidFile));
      return Number(readFileSync(pidFile, 'utf8').trim());
    },
  };
}

describe('the build process runner', () => {
  it('streams every non-blank line, and a failure names the command, its exit code and its stderr tail', async () => {
    const lines: string[] = [];
    const error = await runTool('sh', ['-c', 'echo out; echo; echo first >&2; echo last >&2; exit 3'], { onLine: (l) => lines.push(l) }).catch((e: unknown) => e);
    expect(lines).toEqual(['out', 'first', 'last']);
    expect(isPlinthError(error) && error.message).toBe(`sh -c 'echo out; echo; echo first >&2; echo last >&2; exit 3' failed (exit code 3):\n  first\n  last`);
    expect(isPlinthError(error) && error.details?.exitCode).toBe(3);
    expect(outputOf(error)).toEqual(['out', 'first', 'last']);
  });

  it('quotes its output in the error when the program wrote nothing to stderr', async () => {
    await expect(runTool('sh', ['-c', 'echo only-stdout; exit 1'])).rejects.toThrow(/failed \(exit code 1\): only-stdout$/);
  });

  it('captures standard output instead of streaming it, and feeds standard input', async () => {
    const lines: string[] = [];
    const { stdout } = await runTool('cat', [], { input: 'a\nb\n', stdout: 'capture', onLine: (l) => lines.push(l) });
    expect(stdout).toBe('a\nb\n');
    expect(lines).toEqual([]);
  });

  it('pipes one program into another and writes to a file descriptor', async () => {
    const path = join(dir, 'piped.txt');
    const fd = openSync(path, 'w');
    try {
      const producer = startTool('printf', ['one\\ntwo\\n'], { stdout: 'pipe' });
      const consumer = startTool('tr', ['a-z', 'A-Z'], { input: producer.stdout as Readable, stdout: fd });
      await Promise.all([producer.result, consumer.result]);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(path, 'utf8')).toBe('ONE\nTWO\n');
  });

  it('accepts the exit codes it is told count as success', async () => {
    await expect(runTool('sh', ['-c', 'exit 1'], { okExitCodes: [0, 1] })).resolves.toMatchObject({ exitCode: 1 });
  });

  it('runs in a clean environment unless given one', async () => {
    process.env.PLINTH_BUILD_TEST_LEAK = 'leaked';
    try {
      const { stdout } = await runTool('sh', ['-c', 'echo "${PLINTH_BUILD_TEST_LEAK:-clean} $LC_ALL"'], { stdout: 'capture' });
      expect(stdout.trim()).toBe('clean C.UTF-8');
    } finally {
      delete process.env.PLINTH_BUILD_TEST_LEAK;
    }
  });

  it('says which program it could not start', async () => {
    await expect(runTool('/nonexistent/plinth-tool', [])).rejects.toThrow(/cannot run \/nonexistent\/plinth-tool/);
  });

  it('on abort ends the whole process group, grandchildren included, and names the job and the command', async () => {
    const controller = new AbortController();
    const shell = withGrandchild('abort');
    const run = runTool('sh', shell.args, { signal: controller.signal, job: 'test build' });
    const grandchild = await shell.grandchild();
    expect(running(grandchild)).toBe(true);
    controller.abort(new Error('operator said stop'));
    const error = await run.catch((e: unknown) => e);
    expect(isPlinthError(error) && error.name).toBe('AbortError');
    expect((error as Error).message).toBe('test build aborted: operator said stop (while running sh)');
    await until(() => !running(grandchild));
  });

  it('stops a program that outlives its timeout, with its children, and says so', async () => {
    const shell = withGrandchild('timeout');
    const run = runTool('sh', shell.args, { timeoutMs: 2000 });
    const grandchild = await shell.grandchild();
    const error = await run.catch((e: unknown) => e);
    expect(isPlinthError(error) && error.code).toBe('timeout');
    expect((error as Error).message).toMatch(/^sh -c .* did not finish within 2000 ms and was stopped$/);
    await until(() => !running(grandchild));
  });

  it('does not start anything once the signal is aborted', async () => {
    const marker = join(dir, 'must-not-exist');
    const controller = new AbortController();
    controller.abort();
    await expect(runTool('touch', [marker], { signal: controller.signal, job: 'test build' })).rejects.toThrow(/^test build aborted/);
    expect(existsSync(marker)).toBe(false);
  });
});
