import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vm } from '../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { e2eController, waitFor } from '../support/e2e.js';
import { holdVmSlots } from '../support/hold-vm-slots.js';
import { makeFacts } from '../support/facts.js';

/**
 * The installer's console menu driven over a real VM's serial port (docs/console.md): the
 * operator turns the console on for an available machine, the VM network-boots the real
 * installer, and the test answers each screen by typing on the serial line once the screen's
 * text is there (never after a pause): install, the disk, the image, keep-partitions (which
 * the controller refuses, and the menu says so), then whole-disk; the real agent writes the
 * image as a deploy run, and the last screen powers the VM off. Asserted: the run with the
 * choices and the verified sha256, the machine waiting for its installed OS, and the image's
 * content read back from the VM's disk.
 */
type E2E = Awaited<ReturnType<typeof e2eController>>;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const MAC = '52:54:00:e2:c0:01';
const UUID = 'c0e2e000-0000-4000-8000-0000000000c1';
const dir = mkdtempSync(join(tmpdir(), 'plinth-e2e-console-'));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

holdVmSlots(1); // one VM: a slot of the machine's two (docs/testing.md)

/** A small whole-disk image: GPT, one ext4 partition labelled plinth-root holding a marker file. */
function smallImage(marker: string): Buffer {
  const root = join(dir, 'root');
  mkdirSync(root);
  writeFileSync(join(root, 'console-e2e.txt'), marker);
  const fs = join(dir, 'root.ext4');
  execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'plinth-root', '-d', root, fs, `${30 * 1024}k`]);
  const img = join(dir, 'image.raw');
  writeFileSync(img, '');
  truncateSync(img, 32 * MiB);
  // -o: a new GPT first (on a blank file, -n alone writes no partition and still exits 0).
  execFileSync('sgdisk', ['-o', '-n', '1:2048:+30M', '-t', '1:8300', img], { stdio: 'ignore' });
  execFileSync('dd', [`if=${fs}`, `of=${img}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none']);
  return readFileSync(img);
}

describe('the installer console over a VM serial port', () => {
  let t: E2E;
  let vm: Vm | null = null;
  const marker = `console-e2e ${randomBytes(12).toString('hex')}`;
  const image = smallImage(marker);
  const disk = join(dir, 'disk.raw');
  beforeAll(async () => {
    t = await e2eController();
    const up = await t.inject('POST', `/api/v1/images?name=tiny-console&sha256=${sha256(image)}`, { token: t.adminToken, body: image, headers: { 'content-type': 'application/octet-stream' } });
    expect(up.statusCode, up.body).toBe(201);
    writeFileSync(disk, '');
    truncateSync(disk, 1 * GiB);
  }, 20 * 60_000);
  afterAll(async () => {
    await vm?.stop();
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The machine, inspected (played over HTTP, as its agent would: the VM boots only for the console). */
  async function availableMachine(): Promise<string> {
    const script = (await t.inject('GET', `/boot/machine.ipxe?uuid=${UUID}&mac=${MAC}`, { headers: { host: `10.0.2.2:${t.port}` } })).body;
    const token = /plinth\.token=(\S+)/.exec(script)![1]!;
    expect((await t.inject('POST', '/agent/v1/hello', { token, body: { agentVersion: 't' } })).statusCode).toBe(200);
    const facts = await t.inject('POST', '/agent/v1/facts', { token, body: makeFacts({ uuid: UUID, serial: 'CONSOLE-E2E', macs: [MAC], disks: [['vda', 1 * GiB]] }) });
    expect(facts.statusCode, facts.body).toBe(200);
    const m = (await t.api('GET', `/api/v1/machines?q=${MAC}`)).json().items[0];
    await t.api('PATCH', `/api/v1/machines/${m.id}`, { name: 'console-e2e' });
    expect((await t.api('GET', '/api/v1/machines/console-e2e')).json().state).toBe('available');
    return m.id;
  }

  it('installs the image chosen on the serial console, recorded as a deploy run with its choices', async () => {
    await availableMachine();
    const hold = await t.api('POST', '/api/v1/machines/console-e2e/actions/boot-installer', { console: true, reason: 'console e2e' });
    expect(hold.statusCode, hold.body).toBe(200);
    const holdRun = hold.json().run.id;

    vm = new Vm(
      {
        name: 'console-e2e',
        firmware: 'bios',
        memoryMiB: 1536,
        smbios: { uuid: UUID, serial: 'CONSOLE-E2E' },
        disks: [{ path: disk, format: 'raw', serial: 'CONSOLE-DISK' }],
        nics: [{ mac: MAC, bootUrl: t.bootUrl }],
        serialInput: true,
      },
      { dir, launcher: TEST_QEMU_LAUNCHER },
    );
    await vm.start();
    const serial = await vm.serialConsole();
    const machineState = async () => JSON.stringify((await t.api('GET', '/api/v1/machines/console-e2e')).json().state);
    /** Where the screens the test answered end: each wait looks only at what came after. */
    let seen = 0;
    /** Waits for a screen (its title, then its prompt after it), then types the answer. */
    const answer = async (title: string, prompt: RegExp, reply: string, timeoutMs = 60_000) => {
      const shown = await waitFor(
        `screen '${title}'`,
        timeoutMs,
        async () => {
          const out = vm!.serialOutput();
          const at = out.indexOf(title, seen);
          if (at < 0) return undefined;
          const m = prompt.exec(out.slice(at));
          return m ? { end: at + m.index + m[0].length, out } : undefined;
        },
        async () => `machine ${await machineState()}; console tail:\n${vm!.serialOutput().slice(-3000)}`,
      );
      seen = shown.end;
      serial.type(`${reply}\r`);
      return shown.out.slice(0, shown.end);
    };

    // The installer boots (TCG: minutes) and its agent, holding the console run, shows the menu.
    const main = await answer('--- Plinth installer: machine console-e2e ---', /Choose \[1-4\]: /, '1', 8 * 60_000);
    expect(main).toContain('plinth.console=1');
    const disks = await answer('--- Target disk ---', /Choose \[0-1\]: /, '1', 3 * 60_000);
    expect(disks.slice(disks.lastIndexOf('--- Target disk ---'))).toMatch(/ 1\) vda {2}1\.0 GiB {2}.* serial CONSOLE-DISK/);
    const images = await answer('--- Image ---', /Choose \[0-1\]: /, '1');
    expect(images.slice(images.lastIndexOf('--- Image ---'))).toContain(`1) tiny-console  32.0 MiB  sha256 ${sha256(image).slice(0, 12)}`);
    // Keep-partitions of a whole-disk image: the controller refuses, the menu shows why and starts over.
    await answer('--- Partitioning ---', /Choose \[0-2\]: /, '2');
    await answer('--- Confirm ---', /Type yes to install, anything else to go back: /, 'yes');
    const refused = await answer('--- Target disk ---', /Choose \[0-1\]: /, '1');
    expect(refused).toContain('Refused: /agent/v1/console/install: HTTP 422: layout: keep-partitions writes an image into one partition and keeps the others; image tiny-console is a whole-disk image');
    await answer('--- Image ---', /Choose \[0-1\]: /, '1');
    await answer('--- Partitioning ---', /Choose \[0-2\]: /, '1');
    await answer('--- Confirm ---', /Type yes to install, anything else to go back: /, 'yes');
    // The deploy runs (the image over HTTP into the disk, grown, seeded); the last screen: power off.
    const done = await answer('--- Done ---', /Choose \[1-3\]: /, '2', 6 * 60_000);
    expect(done.slice(done.lastIndexOf('--- Done ---'))).toMatch(/Installed tiny-console on vda: written and its sha256 verified \(deploy run [\w-]+\)/);
    await vm.waitForExit(3 * 60_000);
    serial.close();

    const m = (await t.api('GET', '/api/v1/machines/console-e2e')).json();
    // The image is on the disk; the run waits for the installed OS to report in (this one has no OS).
    expect(m.state).toBe('deploy-wait');
    const run = (await t.api('GET', `/api/v1/runs/${m.currentRunId}`)).json();
    expect(run).toMatchObject({
      kind: 'deploy',
      status: 'running',
      params: { image: 'tiny-console', imageSha256: sha256(image), rootDeviceHints: { name: 'vda' }, console: { disk: 'vda', layout: 'whole-disk', multicast: false, holdRun } },
    });
    const steps = Object.fromEntries(run.steps.map((s: any) => [s.name, s]));
    for (const name of ['prepare', 'agent-hello', 'select-disk', 'write-image', 'grow-root', 'configure']) expect(steps[name].status, name).toBe('succeeded');
    expect(steps['reboot'].status).toBe('running');
    // The image from the controller by its chunk index: every chunk checked against the index the run pins by sha256.
    expect(steps['write-image'].message).toMatch(/every chunk verified|sha256 verified/);
    const trace = (await t.api('GET', '/api/v1/machines/console-e2e/trace?attempts=3')).json().attempts.flatMap((a: any) => a.stages);
    const detail = (stage: string) => trace.find((s: any) => s.stage === stage)?.detail;
    expect(detail('step:select-disk:succeeded')).toMatchObject({ disk: 'vda', chosenBy: 'the root device hints' });
    expect(detail('step:write-image:succeeded')).toMatchObject({ sha256: sha256(image), bytes: image.length, transport: 'http' });
    const holdDone = (await t.api('GET', `/api/v1/runs/${holdRun}`)).json();
    expect(holdDone.status).toBe('succeeded');
    const log = (await t.api('GET', `/api/v1/runs/${holdRun}/log`)).json().items.map((l: any) => l.line);
    expect(log).toContain('console: install tiny-console on vda, keep-partitions, http');
    expect(log).toContain('console: install tiny-console on vda, whole-disk, http');
    const events = (await t.api('GET', '/api/v1/machines/console-e2e/events')).json().items.map((e: any) => `${e.action}:${e.toState}`);
    // The power off chosen on the last screen was reported before the machine did it.
    expect(events.slice(-5)).toEqual(['boot-installer:installer-booting', 'installer-started:installer', 'console-install:deploying', 'installer-started:deploy-wait', 'console-poweroff:deploy-wait']);

    // Read back: the marker file's bytes are on the VM's disk, inside the image's extent.
    const fd = openSync(disk, 'r');
    const head = Buffer.alloc(33 * MiB);
    try {
      readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
    expect(head.indexOf(marker)).toBeGreaterThan(MiB);
  }, 25 * 60_000);
});
