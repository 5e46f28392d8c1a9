/**
 * The lab's `qemu` provider against real QEMU processes (software emulation): power, reset,
 * boot order taking effect at the next start, inventory from the VM definitions.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { LabDir, LabProvider } from '../../src/lab/provider.js';
import type { ProviderContext } from '../../src/providers/types.js';

const ctx: ProviderContext = { timeoutMs: 20_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };
const dir = mkdtempSync(join(tmpdir(), 'plinth-lab-'));
const lab = new LabDir(dir);
lab.write({
  name: 'lab-a',
  memoryMiB: 128,
  smbios: { uuid: '0a0a0a0a-1111-2222-3333-444444444444', serial: 'LAB-A', manufacturer: 'Plinth Lab', product: 'VM' },
  nics: [{ mac: '52:54:00:1a:00:01' }],
});
lab.write({ name: 'lab-b', memoryMiB: 128, nics: [{ mac: '52:54:00:1a:00:02' }, { mac: '52:54:00:1a:00:03' }] });
const provider = new LabProvider({ address: dir });

/** The -boot order QEMU was started with, read from its command line. */
function runningBootOrder(name: string): string {
  const pid = readFileSync(join(dir, 'run', `${name}.pid`), 'utf8').trim();
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  return /netdev=n0,mac=[0-9a-f:]+,bootindex=(\d+)/.exec(cmdline)?.[1] === '1' ? 'network-first' : 'disk-first';
}

afterAll(async () => {
  for (const n of lab.names()) await provider.power.setPowerState(n, 'off', ctx).catch(() => undefined);
});

describeProviderConformance({
  name: 'qemu (local lab)',
  setup: async () => ({
    provider,
    ref: 'lab-a',
    ctx,
    observe: {
      powerState: async (ref) => (existsSync(join(dir, 'run', `${ref}.pid`)) && execFileSync('sh', ['-c', `kill -0 $(cat ${join(dir, 'run', `${ref}.pid`)}) 2>/dev/null && echo on || echo off`], { encoding: 'utf8' }).trim() === 'on' ? 'on' : 'off'),
      bootDevice: async (ref) => lab.bootOverride(ref) ?? undefined,
    },
  }),
  settleMs: 200,
});

describe('qemu lab specifics', () => {
  it('lists the lab VMs with their SMBIOS identity, MACs and power', async () => {
    const systems = await provider.management.listSystems!(ctx);
    expect(systems.map((s) => s.ref)).toEqual(['lab-a', 'lab-b']);
    expect(systems[0]).toMatchObject({ systemUuid: '0a0a0a0a-1111-2222-3333-444444444444', serial: 'LAB-A', manufacturer: 'Plinth Lab', macs: ['52:54:00:1a:00:01'] });
    expect(systems[1]!.macs).toEqual(['52:54:00:1a:00:02', '52:54:00:1a:00:03']);
  });

  it('applies a boot override at the next start: once is consumed, persistent stays', async () => {
    await provider.power.setPowerState('lab-b', 'off', ctx);
    await provider.management.setBootDevice('lab-b', 'disk', { persistent: false }, ctx);
    await provider.power.setPowerState('lab-b', 'on', ctx);
    expect(runningBootOrder('lab-b')).toBe('disk-first');
    expect(lab.bootOverride('lab-b')).toBeNull();
    await provider.management.setBootDevice('lab-b', 'pxe', { persistent: true }, ctx);
    await provider.power.reboot('lab-b', ctx);
    expect(runningBootOrder('lab-b')).toBe('network-first');
    expect(lab.bootOverride('lab-b')).toEqual({ device: 'pxe', persistent: true });
    await provider.power.setPowerState('lab-b', 'off', ctx);
    expect(await provider.power.getPowerState('lab-b', ctx)).toBe('off');
  });

  it('says which VM does not exist', async () => {
    await expect(provider.power.getPowerState('nope', ctx)).rejects.toThrow(/no lab VM 'nope'/);
  });
});
