import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isPlinthError } from '../core/errors.js';
import { acquireBuildLock, currentBootId, ownerAlive, ownerRecord } from './lock.js';

const dir = mkdtempSync(join(tmpdir(), 'plinth-build-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lockModule = fileURLToPath(new URL('./lock.ts', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Another Node process that takes the lock, says so on stdout and keeps it until killed. */
function holderProcess(path: string): Promise<ChildProcess> {
  const script = `
    const { acquireBuildLock } = await import(${JSON.stringify(lockModule)});
    acquireBuildLock(${JSON.stringify(path)}, 'test build');
    process.stdout.write('held\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      if (text.includes('held')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`the lock holder exited (${code}) before taking the lock`)));
  });
}

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

describe('the build lock', () => {
  it('refuses a second build while another process holds it, naming that process, and takes over once it died', async () => {
    const path = join(dir, 'contended.lock');
    const holder = await holderProcess(path);
    const error = (() => {
      try {
        acquireBuildLock(path, 'test build');
        return null;
      } catch (e) {
        return e;
      }
    })();
    expect(isPlinthError(error) && error.code).toBe('conflict');
    expect((error as Error).message).toBe(`another test build is running (process ${holder.pid}, lock ${path})`);

    // SIGKILL: the holder never releases; its record stays behind, stale.
    holder.kill('SIGKILL');
    await exited(holder);
    expect(readFileSync(path, 'utf8')).toBe(`${holder.pid} ${currentBootId()}\n`);
    const release = acquireBuildLock(path, 'test build');
    expect(readFileSync(path, 'utf8')).toBe(ownerRecord());
    release();
    expect(existsSync(path)).toBe(false);
  });

  it('takes over a lock recorded in an earlier boot even if its pid is alive now', () => {
    const path = join(dir, 'other-boot.lock');
    writeFileSync(path, `${process.pid} an-earlier-boot\n`);
    const release = acquireBuildLock(path, 'test build');
    expect(readFileSync(path, 'utf8')).toBe(ownerRecord());
    release();
  });

  it('releases only its own record: a lock another build took over meanwhile stays', () => {
    const path = join(dir, 'taken-over.lock');
    const release = acquireBuildLock(path, 'test build');
    writeFileSync(path, `1 ${currentBootId()}\n`);
    release();
    expect(readFileSync(path, 'utf8')).toBe(`1 ${currentBootId()}\n`);
  });

  it('reads owner records strictly', () => {
    expect(ownerAlive(ownerRecord())).toBe(true);
    expect(ownerAlive(`${process.pid} another-boot`)).toBe(false);
    expect(ownerAlive('garbage')).toBe(false);
    expect(ownerAlive('')).toBe(false);
  });
});
