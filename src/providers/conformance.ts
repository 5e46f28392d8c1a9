/**
 * The provider conformance suite: one set of tests every provider passes against its peer
 * (a real BMC simulator, hypervisor test driver, or a service replaying documented payloads),
 * as Hono runs one router suite against every router. It checks the contracts stated in
 * types.ts, driven by what the provider *declares*: a declared capability must work, an
 * undeclared one must fail with an `unsupported` ProviderError.
 *
 * Beyond the operations it checks what the issue of unreliable appliances asks of every
 * provider: power verified by reads (a peer that drops an action fails the action), boot
 * settings read back (`boot.read-back`: a peer that keeps something else fails the change),
 * sessions recovered (`sessions`: a forgotten session is replaced by one new login) and
 * per-appliance isolation (a wrong-password appliance at the same address opens only its own
 * breaker and never replaces the other's session). The peer's misbehaviour comes from its
 * own fault switches (`misbehave`), its state from reads that bypass the provider (`observe`).
 *
 * Only test files import this module (it registers vitest tests when called).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeMac } from '../core/mac.js';
import { verifiedPowerAction } from './verified-power.js';
import { ProviderRegistry } from './registry.js';
import { CircuitOpenError, ProviderResilience } from './resilient.js';
import { ProviderError, type BootDevice, type BootMode, type Capability, type PowerState, type Provider, type ProviderContext } from './types.js';

/** What the peer saw, read without going through the provider under test. */
export interface PeerObservations {
  powerState?(ref: string): Promise<PowerState>;
  /** The boot device the peer holds for the next boot; undefined when none is set. */
  bootDevice?(ref: string): Promise<{ device: BootDevice; persistent?: boolean; mode?: BootMode } | undefined>;
  /** The image URL in the virtual CD, or null when empty. */
  virtualMedia?(ref: string): Promise<string | null>;
  /**
   * Logins the peer has accepted so far, where it keeps sessions; a peer that cannot count
   * them gives the sessions it holds for others than the observer. Only differences are compared.
   */
  logins?(): number | Promise<number>;
}

/** Switches that make the peer lie instead of fail, as real appliances do. */
export interface PeerMisbehaviour {
  /** While on, the peer answers power actions as accepted and does not carry them out. */
  ignorePower?(on: boolean): void;
  /**
   * While on, the peer answers boot changes as accepted and keeps something else (another
   * device, `Once` kept as `Continuous`, the old order).
   */
  alterBoot?(on: boolean): void;
  /** While on, the peer answers a virtual media insert as accepted and leaves the slot as it was. */
  ignoreMedia?(on: boolean): void;
}

export interface ConformanceSubject {
  /** The provider under test, with valid credentials. */
  provider: Provider;
  /** The system every test acts on. */
  ref: string;
  /** The same endpoint with a wrong password; omitted where the platform has no credentials. */
  withWrongCredentials?: () => Provider;
  /** The password the wrong-credentials provider uses (must not leak into messages). */
  wrongPassword?: string;
  observe?: PeerObservations;
  misbehave?: PeerMisbehaviour;
  /**
   * Makes the peer forget every session the provider holds (a BMC's session timeout, a
   * vCenter restart); omitted where the platform has no sessions.
   */
  endSessions?: () => Promise<void>;
  ctx?: ProviderContext;
}

export interface ConformanceTarget {
  /** Shown in the test names, e.g. `redfish (dmtf mockup)`. */
  name: string;
  setup(): Promise<ConformanceSubject>;
  teardown?(): Promise<void>;
  /** Time power transitions take to show on this platform (default 0). */
  settleMs?: number;
  /**
   * Capabilities the provider declares but this particular system does not offer (a mockup
   * whose boot target list lacks UefiHttp): asking for them must fail as `unsupported`.
   */
  peerLacks?: Capability[];
}

const QUIET = { debug: () => undefined, info: () => undefined, warn: () => undefined };
const BOOT_DEVICES: BootDevice[] = ['pxe', 'disk', 'cd', 'uefi-http'];
const UEFI_HTTP_URL = 'http://192.0.2.10/boot/ipxe.efi';
const ISO_URL = 'http://192.0.2.10/images/installer.iso';

async function expectFailure(promise: Promise<unknown>, failure: ProviderError['failure'], providerType: string): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a '${failure}' ProviderError`).toBeInstanceOf(ProviderError);
  const pe = err as ProviderError;
  expect(pe.failure).toBe(failure);
  expect(pe.provider).toBe(providerType);
  expect(pe.message).toContain(providerType);
  return pe;
}

/** Registers the conformance tests for one provider + peer. */
export function describeProviderConformance(target: ConformanceTarget): void {
  describe(`provider conformance: ${target.name}`, () => {
    let subject: ConformanceSubject;
    let ctx: ProviderContext;
    const has = (cap: Capability): boolean => subject.provider.capabilities.has(cap);
    const settle = async (): Promise<void> => {
      if (target.settleMs) await new Promise((r) => setTimeout(r, target.settleMs));
    };

    beforeAll(async () => {
      subject = await target.setup();
      ctx = subject.ctx ?? { timeoutMs: 10_000, log: QUIET };
    });
    afterAll(async () => {
      await subject?.provider.close?.();
      await target.teardown?.();
    });

    it('declares capabilities that match the methods it implements', () => {
      const m = subject.provider.management;
      if (has('vmedia')) {
        expect(typeof m.insertVirtualMedia).toBe('function');
        expect(typeof m.ejectVirtualMedia).toBe('function');
      }
      if (has('enumerate')) expect(typeof m.listSystems).toBe('function');
      if (has('power.soft-off')) expect(has('power')).toBe(true);
      // A provider holds sessions exactly when its peer can be made to forget them.
      expect(subject.endSessions !== undefined, 'sessions declared ⇔ the target can end sessions').toBe(has('sessions'));
    });

    it('power: on and off are idempotent and reported by getPowerState', async () => {
      const { provider, ref, observe } = subject;
      if (!has('power')) {
        expect(await provider.power.getPowerState(ref, ctx)).toBe('unknown');
        await expectFailure(provider.power.setPowerState(ref, 'on', ctx), 'unsupported', provider.type);
        await expectFailure(provider.power.setPowerState(ref, 'off', ctx), 'unsupported', provider.type);
        return;
      }
      await provider.power.setPowerState(ref, 'on', ctx);
      await provider.power.setPowerState(ref, 'on', ctx);
      await settle();
      expect(await provider.power.getPowerState(ref, ctx)).toBe('on');
      if (observe?.powerState) expect(await observe.powerState(ref)).toBe('on');
      await provider.power.setPowerState(ref, 'off', ctx);
      await provider.power.setPowerState(ref, 'off', ctx);
      await settle();
      expect(await provider.power.getPowerState(ref, ctx)).toBe('off');
      if (observe?.powerState) expect(await observe.powerState(ref)).toBe('off');
    });

    it('power: reboot powers on a system that is off, and keeps a running one on', async () => {
      const { provider, ref, observe } = subject;
      if (!has('power')) {
        await expectFailure(provider.power.reboot(ref, ctx), 'unsupported', provider.type);
        return;
      }
      await provider.power.setPowerState(ref, 'off', ctx);
      await settle();
      await provider.power.reboot(ref, ctx);
      await settle();
      expect(await provider.power.getPowerState(ref, ctx)).toBe('on');
      if (observe?.powerState) expect(await observe.powerState(ref)).toBe('on');
      await provider.power.reboot(ref, ctx);
      await settle();
      expect(await provider.power.getPowerState(ref, ctx)).toBe('on');
    });

    it('power: verified actions land before they resolve, so the next one is never decided on a stale read', async () => {
      const { provider, ref, observe } = subject;
      if (!has('power')) return;
      const verify = { timeoutMs: Math.max(ctx.timeoutMs, 10_000), intervalMs: 50 };
      // Back to back, no settling: each read the next action decides on comes after the last action landed.
      for (const target of ['on', 'off', 'on', 'off', 'reboot', 'off'] as const) {
        const read = await verifiedPowerAction(provider, ref, target, ctx, verify);
        const wanted = target === 'reboot' ? 'on' : target;
        expect(read, `after ${target}`).toBe(wanted);
        if (observe?.powerState) expect(await observe.powerState(ref), `peer after ${target}`).toBe(wanted);
      }
    });

    it('power: a peer that accepts an action and does not carry it out fails verification, naming the state it reads', async () => {
      const { provider, ref, observe, misbehave } = subject;
      if (!has('power') || !misbehave?.ignorePower) return;
      const settled = { timeoutMs: Math.max(ctx.timeoutMs, 10_000), intervalMs: 50 };
      // Bounded: the peer never gets there, the wait must end as `timeout`.
      const short = { timeoutMs: 300, intervalMs: 50 };
      for (const [from, action, stays] of [
        ['off', 'on', 'off'],
        ['on', 'off', 'on'],
        ['off', 'reboot', 'off'],
      ] as const) {
        await verifiedPowerAction(provider, ref, from, ctx, settled);
        misbehave.ignorePower(true);
        try {
          const err = await expectFailure(verifiedPowerAction(provider, ref, action, ctx, short), 'timeout', provider.type);
          expect(err.message).toContain(`did not reach power '${action === 'reboot' ? 'on' : action}'`);
          expect(err.message).toContain(`reads '${stays}'`);
          if (observe?.powerState) expect(await observe.powerState(ref), `peer after an ignored ${action}`).toBe(stays);
        } finally {
          misbehave.ignorePower(false);
        }
      }
      // The peer behaves again: the same action lands.
      expect(await verifiedPowerAction(provider, ref, 'on', ctx, settled)).toBe('on');
    });

    it('power: soft-off is accepted where declared, refused as unsupported elsewhere', async () => {
      const { provider, ref } = subject;
      if (!has('power.soft-off')) {
        await expectFailure(provider.power.setPowerState(ref, 'soft-off', ctx), 'unsupported', provider.type);
        return;
      }
      await provider.power.setPowerState(ref, 'on', ctx);
      await settle();
      await provider.power.setPowerState(ref, 'soft-off', ctx);
      // Soft-off asks the OS; a system that is already off accepts it as done.
      await provider.power.setPowerState(ref, 'off', ctx);
      await settle();
      await provider.power.setPowerState(ref, 'soft-off', ctx);
    });

    for (const device of BOOT_DEVICES) {
      it(`boot: ${device} is set where declared, refused as unsupported elsewhere`, async () => {
        const { provider, ref, observe } = subject;
        const options = device === 'uefi-http' ? { url: UEFI_HTTP_URL } : {};
        if (!has(`boot.${device}`) || target.peerLacks?.includes(`boot.${device}`)) {
          await expectFailure(provider.management.setBootDevice(ref, device, options, ctx), 'unsupported', provider.type);
          return;
        }
        await provider.management.setBootDevice(ref, device, options, ctx);
        if (observe?.bootDevice) expect((await observe.bootDevice(ref))?.device).toBe(device);
        // Setting the same device again is harmless.
        await provider.management.setBootDevice(ref, device, options, ctx);
      });
    }

    it('boot: persistent and firmware mode follow the declared capabilities', async () => {
      const { provider, ref, observe } = subject;
      const device = BOOT_DEVICES.find((d) => has(`boot.${d}`) && d !== 'uefi-http');
      if (!device) return;
      const offers = (cap: Capability): boolean => has(cap) && !target.peerLacks?.includes(cap);
      // A provider reads its settings back: a peer that drops a flag is refused as `unsupported`, never reported done.
      if (offers('boot.persistent')) {
        await provider.management.setBootDevice(ref, device, { persistent: true }, ctx);
        const seen = await observe?.bootDevice?.(ref);
        if (seen?.persistent !== undefined) expect(seen.persistent).toBe(true);
        await provider.management.setBootDevice(ref, device, { persistent: false }, ctx);
        const once = await observe?.bootDevice?.(ref);
        if (once?.persistent !== undefined) expect(once.persistent).toBe(false);
      } else {
        await expectFailure(provider.management.setBootDevice(ref, device, { persistent: true }, ctx), 'unsupported', provider.type);
      }
      if (offers('boot.mode')) {
        await provider.management.setBootDevice(ref, device, { mode: 'uefi' }, ctx);
        const seen = await observe?.bootDevice?.(ref);
        if (seen?.mode !== undefined) expect(seen.mode).toBe('uefi');
      } else if (has('boot.mode')) {
        await expectFailure(provider.management.setBootDevice(ref, device, { mode: 'uefi' }, ctx), 'unsupported', provider.type);
      }
    });

    it('boot read-back: a peer that answers a boot change as accepted and keeps something else fails the change', async () => {
      const { provider, ref, observe, misbehave } = subject;
      const offers = (cap: Capability): boolean => has(cap) && !target.peerLacks?.includes(cap);
      const devices = BOOT_DEVICES.filter((d) => d !== 'uefi-http' && offers(`boot.${d}`));
      if (!has('boot.read-back') || !misbehave?.alterBoot || devices.length === 0) return;
      const [from, to] = [devices[0]!, devices[1] ?? devices[0]!];
      // Next boot only, and persistent where offered: each altered, each must fail.
      for (const options of offers('boot.persistent') ? [{}, { persistent: true }] : [{}]) {
        await provider.management.setBootDevice(ref, from, {}, ctx);
        misbehave.alterBoot(true);
        let err: unknown;
        try {
          err = await provider.management.setBootDevice(ref, to, options, ctx).then(
            () => undefined,
            (e: unknown) => e,
          );
        } finally {
          misbehave.alterBoot(false);
        }
        expect(err, `an altered boot setting (${JSON.stringify(options)}) must fail, never read as done`).toBeInstanceOf(ProviderError);
        const pe = err as ProviderError;
        expect(pe.provider).toBe(provider.type);
        expect(['protocol', 'unsupported']).toContain(pe.failure);
        expect(pe.message).toMatch(/kept/);
      }
      // The peer behaves again: the same request is set, and the peer itself holds it.
      await provider.management.setBootDevice(ref, to, {}, ctx);
      if (observe?.bootDevice) expect((await observe.bootDevice(ref))?.device).toBe(to);
    });

    it('virtual media: insert and eject where declared (eject is idempotent)', async () => {
      const { provider, ref, observe } = subject;
      const m = provider.management;
      if (!has('vmedia')) {
        if (m.insertVirtualMedia) await expectFailure(m.insertVirtualMedia(ref, ISO_URL, ctx), 'unsupported', provider.type);
        return;
      }
      await m.insertVirtualMedia!(ref, ISO_URL, ctx);
      await m.insertVirtualMedia!(ref, ISO_URL, ctx);
      if (observe?.virtualMedia) expect(await observe.virtualMedia(ref)).toBe(ISO_URL);
      await m.ejectVirtualMedia!(ref, ctx);
      await m.ejectVirtualMedia!(ref, ctx);
      if (observe?.virtualMedia) expect(await observe.virtualMedia(ref)).toBeNull();
    });

    it('virtual media read-back: a peer that answers an insert as accepted and leaves the slot empty fails the insert', async () => {
      const { provider, ref, observe, misbehave } = subject;
      if (!has('vmedia') || !misbehave?.ignoreMedia) return;
      await provider.management.ejectVirtualMedia!(ref, ctx);
      misbehave.ignoreMedia(true);
      let err: unknown;
      try {
        err = await provider.management.insertVirtualMedia!(ref, ISO_URL, ctx).then(
          () => undefined,
          (e: unknown) => e,
        );
      } finally {
        misbehave.ignoreMedia(false);
      }
      expect(err, 'an insert the peer did not carry out must fail, never read as done').toBeInstanceOf(ProviderError);
      expect((err as ProviderError).failure).toBe('protocol');
      expect((err as ProviderError).message).toMatch(/kept/);
      // The peer behaves again: the same insert lands.
      await provider.management.insertVirtualMedia!(ref, ISO_URL, ctx);
      if (observe?.virtualMedia) expect(await observe.virtualMedia(ref)).toBe(ISO_URL);
      await provider.management.ejectVirtualMedia!(ref, ctx);
    });

    it('listSystems: returns well-formed systems including the one under test', async () => {
      const { provider, ref } = subject;
      const m = provider.management;
      if (!has('enumerate')) {
        if (m.listSystems) await expectFailure(m.listSystems(ctx), 'unsupported', provider.type);
        return;
      }
      const systems = await m.listSystems!(ctx);
      expect(Array.isArray(systems)).toBe(true);
      expect(systems.map((s) => s.ref)).toContain(ref);
      for (const s of systems) {
        expect(typeof s.ref).toBe('string');
        expect(s.ref.length).toBeGreaterThan(0);
        expect(Array.isArray(s.macs)).toBe(true);
        for (const mac of s.macs) expect(normalizeMac(mac)).toBe(mac);
        if (s.systemUuid !== undefined) expect(s.systemUuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        if (s.powerState !== undefined) expect(['on', 'off', 'unknown']).toContain(s.powerState);
      }
    });

    it('session recovery: a session the peer forgot is replaced, for reads and for actions', async () => {
      const { provider, ref, observe, endSessions } = subject;
      if (!endSessions || !has('power')) return;
      await provider.power.setPowerState(ref, 'on', ctx);
      await settle();
      await endSessions();
      const logins = await observe?.logins?.();
      // A forgotten session must not read as `unknown`, nor fail as wrong credentials.
      expect(await provider.power.getPowerState(ref, ctx)).toBe('on');
      // Replaced by exactly one new login, which the next call reuses.
      if (logins !== undefined) expect((await observe!.logins!()) - logins, 'logins after the session was forgotten').toBe(1);
      expect(await provider.power.getPowerState(ref, ctx)).toBe('on');
      if (logins !== undefined) expect((await observe!.logins!()) - logins, 'logins after a second call').toBe(1);
      await endSessions();
      await provider.power.setPowerState(ref, 'off', ctx);
      await settle();
      if (observe?.powerState) expect(await observe.powerState(ref)).toBe('off');
      expect(await provider.power.getPowerState(ref, ctx)).toBe('off');
    });

    it('per-appliance isolation: a wrong-password appliance at the same address breaks only its own circuit', async () => {
      const { provider, ref, withWrongCredentials, observe } = subject;
      if (!withWrongCredentials) return;
      const wrong = withWrongCredentials();
      // The registry under test builds these two providers: each endpoint's credentials pick one.
      const registry = new ProviderRegistry(
        { [provider.type]: (endpoint: { password?: string }) => (endpoint.password === 'right' ? provider : wrong) },
        new ProviderResilience({ attempts: 1, failureThreshold: 1 }),
      );
      const at = { address: 'same-address', username: 'operator' };
      try {
        const good = registry.create(provider.type, { ...at, password: 'right' }, { appliance: 'correct' });
        expect(['on', 'off']).toContain(await good.power.getPowerState(ref, ctx));
        const logins = await observe?.logins?.();
        // Registered after the good one, at its address: must not take its place.
        const bad = registry.create(provider.type, { ...at, password: 'wrong' }, { appliance: 'typo' });
        await expectFailure(bad.power.getPowerState(ref, ctx), 'auth', provider.type);
        expect(await bad.power.getPowerState(ref, ctx).catch((e: unknown) => e)).toBeInstanceOf(CircuitOpenError);
        expect(['on', 'off']).toContain(await good.power.getPowerState(ref, ctx));
        // The good appliance kept its session: the wrong one neither replaced nor ended it.
        if (logins !== undefined) expect((await observe!.logins!()) - logins, 'logins of the good appliance').toBe(0);
      } finally {
        await wrong.close?.();
      }
    });

    it('wrong credentials: an auth failure that names the provider and not the password', async () => {
      if (!subject.withWrongCredentials) return;
      const bad = subject.withWrongCredentials();
      try {
        const err = await expectFailure(bad.power.getPowerState(subject.ref, ctx), 'auth', bad.type);
        expect(err.retryable).toBe(false);
        if (subject.wrongPassword) expect(err.message).not.toContain(subject.wrongPassword);
      } finally {
        await bad.close?.();
      }
    });
  });
}
