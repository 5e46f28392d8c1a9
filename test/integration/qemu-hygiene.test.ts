import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killOwnedQemus, OWNER_VARIABLE, ownedQemus, TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { ROOT } from '../support/plinth-process.js';

/**
 * The machinery that keeps test VMs from outliving their tests, exercised with a stand-in
 * for QEMU (a program named qemu-system-… that only waits): a VM left running is found by
 * its marker and killed, and a VM started through the test launcher dies with the process
 * that started it even when that process is SIGKILLed (a vitest worker killed on timeout).
 */
const dir = mkdtempSync(join(tmpdir(), 'plinth-qemu-hygiene-'));
/** `sleep` under a QEMU name: /proc/PID/comm is what the cleanup looks at. */
const fakeQemu = join(dir, 'qemu-system-fake');
/** Take QEMU's arguments (as Vm passes them) and become a fake whose name tells them apart. */
const fakeWith = join(dir, 'fake-with-launcher.sh');
const fakeWithout = join(dir, 'fake-without-launcher.sh');
const owner = () => process.env[OWNER_VARIABLE]!;

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
const pidsOf = () => ownedQemus(owner()).map((p) => p.pid);

/** Waits for a condition; the test's own timeout bounds it. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 50));
}

beforeAll(() => {
  copyFileSync('/bin/sleep', fakeQemu);
  chmodSync(fakeQemu, 0o755);
  for (const [script, name] of [
    [fakeWith, 'qemu-system-with'],
    [fakeWithout, 'qemu-system-without'],
  ] as const) {
    copyFileSync('/bin/sleep', join(dir, name));
    writeFileSync(script, `#!/bin/sh\nexec ${join(dir, name)} 600\n`, { mode: 0o755 });
  }
});
afterAll(async () => {
  await killOwnedQemus(owner());
  rmSync(dir, { recursive: true, force: true });
});

describe('QEMU started by tests never outlives them', () => {
  it('every test file has its own marker, inherited by what it starts', () => {
    expect(owner()).toMatch(/^run-\d+-[0-9a-f]+:qemu-hygiene\.test\.ts:\d+$/);
  });

  it('a VM left running is found by its marker and killed', async () => {
    const child = spawn(fakeQemu, ['600'], { stdio: 'ignore' });
    await until(() => pidsOf().includes(child.pid!));
    // Another run's VM (other marker) is not ours to touch.
    const other = spawn(fakeQemu, ['600'], { stdio: 'ignore', env: { ...process.env, [OWNER_VARIABLE]: 'run-other:x:1' } });
    try {
      const killed = await killOwnedQemus(owner());
      expect(killed.map((p) => p.pid)).toEqual([child.pid]);
      await exited(child);
      expect(child.signalCode).toBe('SIGKILL');
      expect(other.exitCode === null && other.signalCode === null).toBe(true);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('a VM started through the test launcher dies with a SIGKILLed parent; one started without it does not', async () => {
    // The parent: a Node process that starts two lab VMs (the real Vm class), one through
    // the launcher, then waits to be killed.
    const script = `
      import { Vm } from ${JSON.stringify(join(ROOT, 'src', 'lab', 'vm.ts'))};
      const dir = ${JSON.stringify(dir)};
      const launched = new Vm({ name: 'with-launcher' }, { dir, qemuBinary: ${JSON.stringify(fakeWith)}, launcher: ${JSON.stringify(TEST_QEMU_LAUNCHER)} });
      const bare = new Vm({ name: 'without-launcher' }, { dir, qemuBinary: ${JSON.stringify(fakeWithout)} });
      await launched.start();
      await bare.start();
      console.log('started');
      setInterval(() => undefined, 1000);
    `;
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      parent.stdout!.on('data', (d: Buffer) => d.toString().includes('started') && resolve());
      parent.once('exit', (code) => reject(new Error(`parent exited (${code}) before starting its VMs`)));
    });
    expect(ownedQemus(owner()).map((p) => p.command.split(' ')[0]).sort()).toEqual([join(dir, 'qemu-system-with'), join(dir, 'qemu-system-without')]);

    parent.kill('SIGKILL');
    await exited(parent);
    // The kernel delivers the parent-death signal as the parent exits: by now only the VM
    // started without the launcher is left.
    await until(() => ownedQemus(owner()).length < 2);
    const left = ownedQemus(owner());
    expect(left).toHaveLength(1);
    expect(left[0]!.command.split(' ')[0]).toBe(join(dir, 'qemu-system-without'));
    await killOwnedQemus(owner());
  });
});

