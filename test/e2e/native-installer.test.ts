import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReadStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vm, type VmSpec } from '../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../support/qemu-processes.js';
import { e2eController, waitFor } from '../support/e2e.js';
import { holdVmSlots } from '../support/hold-vm-slots.js';

/**
 * The installer-native deploy method as far as these machines allow: a VM boots Debian's own
 * netboot installer (Debian's debian-installer-12-netboot-amd64 package) through the iPXE
 * script rendered for its run, and the installer fetches the preseed rendered for it — the
 * boot trace shows each step. (Letting it install would take an hour under emulation.)
 */
type E2E = Awaited<ReturnType<typeof e2eController>>;
const DI = '/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64';
const dir = mkdtempSync(join(tmpdir(), 'plinth-e2e-native-'));

holdVmSlots(1); // one VM at a time: a slot of the machine's two (docs/testing.md)

describe('deploying with the Debian installer', () => {
  let t: E2E;
  let vm: Vm | null = null;
  let spec: VmSpec;
  beforeAll(async () => {
    t = await e2eController();
    await t.controller.services.images.upload({ name: 'd-i-linux', kind: 'kernel', body: createReadStream(join(DI, 'linux')) });
    await t.controller.services.images.upload({ name: 'd-i-initrd', kind: 'initrd', body: createReadStream(join(DI, 'initrd.gz')) });
    spec = {
      name: 'di-vm',
      memoryMiB: 1024,
      smbios: { serial: 'DI-VM-1', manufacturer: 'Plinth Labs' },
      disks: [{ path: join(dir, 'di.qcow2'), sizeBytes: 4 * 2 ** 30 }],
      nics: [{ mac: '52:54:00:d1:00:01', bootUrl: t.bootUrl }],
    };
  });
  afterAll(async () => {
    await vm?.stop();
    await t?.close();
  });

  it('boots the distribution installer with the run\'s iPXE script, and the installer fetches its preseed', async () => {
    vm = new Vm(spec, { dir, launcher: TEST_QEMU_LAUNCHER });
    await vm.start();
    await vm.waitForExit(8 * 60_000);
    const m = (await t.api('GET', '/api/v1/machines?q=52:54:00:d1:00:01')).json().items[0];
    expect(m.state).toBe('available');

    const r = await t.api('POST', `/api/v1/machines/${m.id}/actions/deploy`, { method: 'preseed', installer: { kernel: 'd-i-linux', initrd: 'd-i-initrd' } });
    expect(r.statusCode, r.body).toBe(200);
    const runId = r.json().run.id;
    vm = new Vm({ ...spec, name: 'di-vm-install' }, { dir, launcher: TEST_QEMU_LAUNCHER });
    await vm.start();
    const trace = await waitFor<any>('preseed fetched', 10 * 60_000, async () => {
      const tr = (await t.api('GET', `/api/v1/machines/${m.id}/trace?attempts=1`)).json();
      return tr.attempts[0]?.stages.some((s: any) => s.stage === 'artifact') ? tr : undefined;
    }, async () => `console:\n${vm!.serialOutput().slice(-2000)}`);
    const attempt = trace.attempts[0];
    expect(attempt).toMatchObject({ decision: 'preseed-installer', runId });
    expect(attempt.stages.find((s: any) => s.stage === 'artifact').detail).toEqual({ name: 'preseed/preseed.cfg' });
    expect((await t.api('GET', `/api/v1/machines/${m.id}`)).json().state).toBe('deploy-wait');
    // The installer's own kernel and initrd came from the image store.
    const files = (await t.api('GET', `/api/v1/runs/${runId}/artifacts/ipxe%2Fdebian-installer`)).body;
    expect(files).toContain(`${t.bootUrl.replace('/boot.ipxe', '')}/boot/files/d-i-linux`);
    expect(files).toContain(`${t.bootUrl.replace('/boot.ipxe', '')}/boot/files/d-i-initrd`);
    await vm.stop();
    expect((await t.api('POST', `/api/v1/machines/${m.id}/actions/abort`, {})).json().machine.state).toBe('deploy-failed');
  }, 20 * 60_000);
});
