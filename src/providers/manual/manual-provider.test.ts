import { describe, expect, it } from 'vitest';
import { describeProviderConformance } from '../conformance.js';
import { ManualActionRequired, ManualProvider } from './manual-provider.js';

const ctx = { timeoutMs: 1_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };

describeProviderConformance({
  name: 'manual',
  setup: async () => ({ provider: new ManualProvider(), ref: 'rack4-07', ctx }),
});

describe('manual provider: instructions for the operator', () => {
  it('has no capabilities and an unknown power state', async () => {
    const p = new ManualProvider();
    expect(p.capabilities.size).toBe(0);
    expect(await p.power.getPowerState('rack4-07', ctx)).toBe('unknown');
  });

  it('says exactly what to do, repeating the boot device asked for before', async () => {
    const p = new ManualProvider();
    const boot = (await p.management.setBootDevice('rack4-07', 'pxe', {}, ctx).catch((e: unknown) => e)) as ManualActionRequired;
    expect(boot).toBeInstanceOf(ManualActionRequired);
    expect(boot.failure).toBe('unsupported');
    expect(boot.message).toBe('manual: no power control: make machine rack4-07 boot from the network (PXE) at its next start (boot menu or firmware boot order)');
    const on = (await p.power.setPowerState('rack4-07', 'on', ctx).catch((e: unknown) => e)) as ManualActionRequired;
    expect(on.message).toBe('manual: no power control: power on machine rack4-07 and make it boot from the network (PXE)');
    expect(on.action).toEqual({ kind: 'power', machine: 'rack4-07', target: 'on', bootDevice: 'pxe' });
    const reboot = (await p.power.reboot('rack4-07', ctx).catch((e: unknown) => e)) as ManualActionRequired;
    expect(reboot.message).toMatch(/restart machine rack4-07 \(power it on if it is off\) and make it boot from the network/);
    const off = (await p.power.setPowerState('rack4-07', 'off', ctx).catch((e: unknown) => e)) as ManualActionRequired;
    expect(off.message).toBe('manual: no power control: power off machine rack4-07');
  });
});
