/**
 * The IPMI provider against a real BMC simulator: OpenIPMI's ipmi_sim over RMCP+ on
 * loopback (cipher suite 3), with a chassis_control script recording what it was told.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { IpmiProvider, IPMI_SYSTEM_REF } from '../../src/providers/ipmi/index.js';
import { ProviderError, type BootDevice, type ProviderContext } from '../../src/providers/types.js';
import { startIpmiSim, type IpmiSimPeer } from '../support/peers/ipmi-sim.js';

const ctx: ProviderContext = { timeoutMs: 8_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };
// ipmi_sim hands chassis_control the IPMI boot selector: "default" is the default hard drive.
const SIM_BOOT: Record<string, BootDevice> = { pxe: 'pxe', default: 'disk', cdrom: 'cd' };

function provider(peer: IpmiSimPeer, password = peer.password): IpmiProvider {
  return new IpmiProvider({ address: peer.address, username: peer.username, password, options: { cipherSuite: 3 } });
}

let conformancePeer: IpmiSimPeer;
describeProviderConformance({
  name: 'ipmi (OpenIPMI ipmi_sim)',
  // ipmi_sim keeps the boot device only: persistence and the EFI flag are dropped (read back).
  peerLacks: ['boot.persistent', 'boot.mode'],
  setup: async () => {
    conformancePeer = await startIpmiSim();
    const peer = conformancePeer;
    return {
      provider: provider(peer),
      ref: IPMI_SYSTEM_REF,
      withWrongCredentials: () => provider(peer, 'not-the-password'),
      wrongPassword: 'not-the-password',
      misbehave: peer,
      observe: {
        powerState: async () => peer.power(),
        bootDevice: async () => {
          const dev = SIM_BOOT[peer.bootDevice() ?? ''];
          return dev ? { device: dev } : undefined;
        },
      },
      ctx,
    };
  },
  teardown: async () => conformancePeer.close(),
});

describe('ipmi: against ipmi_sim', () => {
  let peer: IpmiSimPeer;
  beforeAll(async () => {
    peer = await startIpmiSim({ password: 'Pa55-for-ipmi' });
  });
  afterAll(async () => peer.close());

  it('tells the chassis exactly what was asked: power on, reset, soft shutdown, off', async () => {
    const p = provider(peer);
    await p.power.setPowerState(IPMI_SYSTEM_REF, 'on', ctx);
    await p.power.reboot(IPMI_SYSTEM_REF, ctx);
    await p.power.setPowerState(IPMI_SYSTEM_REF, 'soft-off', ctx);
    await p.power.setPowerState(IPMI_SYSTEM_REF, 'off', ctx);
    const sets = peer.calls().filter((c) => c.startsWith('set '));
    expect(sets).toEqual(['set power 1', 'set reset 1', 'set shutdown 1', 'set power 0']);
  });

  it('reads the boot flags back: a BMC that keeps next boot only, legacy after a persistent UEFI request is an error naming what it kept', async () => {
    const p = provider(peer);
    // ipmi_sim takes the device and drops the persistent and EFI flags.
    const err = (await p.management.setBootDevice(IPMI_SYSTEM_REF, 'pxe', { persistent: true, mode: 'uefi' }, ctx).catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.failure).toBe('unsupported');
    expect(err.message).toContain('accepted boot flags pxe, persistent, UEFI but kept pxe, next boot only, legacy');
    // What it does keep is accepted, and the chassis is told the device.
    await p.management.setBootDevice(IPMI_SYSTEM_REF, 'cd', {}, ctx);
    expect(peer.bootDevice()).toBe('cdrom');
    await p.management.setBootDevice(IPMI_SYSTEM_REF, 'disk', { mode: 'legacy' }, ctx);
    expect(peer.bootDevice()).toBe('default');
  });

  it('stops the BMC clearing the boot flags after 60 seconds before it sets them, then reads them back', async () => {
    // ipmi_sim accepts parameter 3 but cannot report it: record what reaches the real ipmitool.
    const shim = mkdtempSync(join(tmpdir(), 'plinth-ipmitool-'));
    const log = join(shim, 'calls.log');
    const real = execFileSync('sh', ['-c', 'command -v ipmitool'], { encoding: 'utf8' }).trim();
    writeFileSync(join(shim, 'ipmitool'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${real}' "$@"\n`);
    chmodSync(join(shim, 'ipmitool'), 0o755);
    const path = process.env['PATH'];
    process.env['PATH'] = `${shim}:${path}`;
    try {
      await provider(peer).management.setBootDevice(IPMI_SYSTEM_REF, 'pxe', {}, ctx);
      const calls = readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => line.slice(line.indexOf(' raw ') >= 0 ? line.indexOf(' raw ') + 1 : line.indexOf(' chassis ') + 1));
      expect(calls).toEqual(['raw 0x00 0x08 0x03 0x08', 'chassis bootdev pxe', 'chassis bootparam get 5']);
      expect(peer.bootDevice()).toBe('pxe');
    } finally {
      process.env['PATH'] = path;
      rmSync(shim, { recursive: true, force: true });
    }
  });

  it('reads the BMC GUID as the system identity', async () => {
    const [system] = await provider(peer).management.listSystems!(ctx);
    expect(system).toMatchObject({ ref: 'bmc', systemUuid: 'efcdab89-6745-23a1-efcd-ab89674523a1', macs: [] });
  });

  it('refers to its one system as bmc and nothing else', async () => {
    const err = (await provider(peer).power.getPowerState('node-7', ctx).catch((e: unknown) => e)) as ProviderError;
    expect(err.failure).toBe('not-found');
  });

  it('never shows the password on a command line (ps), even while a call hangs', async () => {
    peer.freeze();
    try {
      const call = provider(peer).power.getPowerState(IPMI_SYSTEM_REF, { ...ctx, timeoutMs: 3_000 }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 300));
      const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
      expect(ps).toContain(`-p ${peer.port}`);
      expect(ps).not.toContain('Pa55-for-ipmi');
      await call;
    } finally {
      peer.thaw();
    }
  });

  it('a BMC that does not answer is a timeout, and leaves no ipmitool behind', async () => {
    peer.freeze();
    try {
      // The BMC never answers: the call coming back at all is the timeout at work.
      const err = (await provider(peer).power.getPowerState(IPMI_SYSTEM_REF, { ...ctx, timeoutMs: 1_500 }).catch((e: unknown) => e)) as ProviderError;
      expect(err).toBeInstanceOf(ProviderError);
      expect(['timeout', 'unreachable']).toContain(err.failure);
      expect(err.retryable).toBe(true);
      const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
      expect(ps).not.toContain(`-p ${peer.port} -U`);
    } finally {
      peer.thaw();
    }
  });

  it('wrong password: an auth failure, told apart from an unreachable BMC', async () => {
    const err = (await provider(peer, 'wrong').power.getPowerState(IPMI_SYSTEM_REF, ctx).catch((e: unknown) => e)) as ProviderError;
    expect(err.failure).toBe('auth');
    expect(err.message).toMatch(/refused the user name or password/);
  });
});

describe('ipmi: a BMC that rejects the boot device', () => {
  let peer: IpmiSimPeer;
  beforeAll(async () => {
    peer = await startIpmiSim({ rejectBootDevice: true });
  });
  afterAll(async () => peer.close());

  it('fails although ipmitool exits 0', async () => {
    const err = (await provider(peer).management.setBootDevice(IPMI_SYSTEM_REF, 'pxe', {}, ctx).catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.message).toMatch(/rejected 'chassis bootdev pxe': Set Chassis Boot Parameter \d+ failed/);
  });
});
