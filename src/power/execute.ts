import type { JobResult, JobSpec } from './jobs.js';
import { ProviderError, requireCapability, type Capability, type Provider, type ProviderContext } from '../providers/types.js';
import { verifiedPowerAction, type PowerVerifyOptions } from '../providers/verified-power.js';

/**
 * Carries out one provider job against a provider. No store, no API: the controller and the
 * remote manager both run jobs through here. A failure says which step failed (`boot-device`
 * or `power`), which the lifecycle turns into `lastError.code`.
 */
export class JobStepError extends Error {
  constructor(
    readonly step: 'virtual-media' | 'boot-device' | 'power' | 'status' | 'enumerate',
    readonly failure: string,
    message: string,
  ) {
    super(message);
    this.name = 'JobStepError';
  }
}

async function step<T>(name: JobStepError['step'], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const failure = e instanceof ProviderError ? e.failure : 'protocol';
    throw new JobStepError(name, failure, (e as Error).message);
  }
}

/** Failures that speak for the whole appliance: a sync stops at the first (the next reads would fail the same way). */
export function failsWholeAppliance(failure: string): boolean {
  return failure === 'auth' || failure === 'timeout' || failure === 'unreachable';
}

const BOOT_CAPABILITY: Record<string, Capability> = { pxe: 'boot.pxe', disk: 'boot.disk', cd: 'boot.cd', 'uefi-http': 'boot.uefi-http' };

/** Ironic's default `power_state_change_timeout`. */
export const DEFAULT_POWER_VERIFY: PowerVerifyOptions = { timeoutMs: 60_000 };

/**
 * Runs a job. Every power action is verified (see verified-power.ts): the power a job
 * reports is the state read once the action landed, not the state asked for.
 */
export async function executeJob(spec: JobSpec, provider: Provider, ctx: ProviderContext, verify: PowerVerifyOptions = DEFAULT_POWER_VERIFY): Promise<JobResult> {
  switch (spec.kind) {
    case 'boot': {
      if (spec.media !== undefined) {
        const media = spec.media;
        await step('virtual-media', async () => {
          requireCapability(provider, 'vmedia');
          if (!media) throw new ProviderError(provider.type, 'protocol', 'no URL to give the BMC for the installer ISO: set publicUrl (the address the BMC reaches the controller at)');
          await provider.management.insertVirtualMedia!(spec.ref, media, ctx);
        });
      }
      await step('boot-device', async () => {
        requireCapability(provider, BOOT_CAPABILITY[spec.device]!);
        await provider.management.setBootDevice(
          spec.ref,
          spec.device,
          { persistent: spec.persistent, ...(spec.mode && provider.capabilities.has('boot.mode') ? { mode: spec.mode } : {}), ...(spec.url ? { url: spec.url } : {}) },
          ctx,
        );
      });
      if (spec.then === 'none') return {};
      // Reboot powers on a machine that is off (the provider contract); `on` leaves a running one alone.
      return { power: await step('power', () => verifiedPowerAction(provider, spec.ref, spec.then === 'reboot' ? 'reboot' : 'on', ctx, verify)) };
    }
    case 'eject':
      await step('virtual-media', async () => {
        requireCapability(provider, 'vmedia');
        await provider.management.ejectVirtualMedia!(spec.ref, ctx);
      });
      return {};
    case 'power': {
      const read = await step('power', () => verifiedPowerAction(provider, spec.ref, spec.target, ctx, verify));
      // A soft-off still running is no reading of the machine's power: the next sync reads it.
      if (spec.target === 'soft-off' && read !== 'off') return {};
      return { power: read };
    }
    case 'status':
      return { power: await step('status', () => provider.power.getPowerState(spec.ref, ctx)) };
    case 'sync': {
      // A machine the appliance cannot read is `unknown`; a failure of the appliance itself
      // (credentials refused, no answer) ends the sync: every further read would fail the same
      // way, and a BMC counts each refused login (lockout). The failure is the sync's result,
      // which the appliance's health records.
      const states: Record<string, 'on' | 'off' | 'unknown'> = {};
      let error: { failure: string; message: string } | undefined;
      let read = false;
      for (const ref of spec.refs) {
        if (error && failsWholeAppliance(error.failure)) {
          states[ref] = 'unknown';
          continue;
        }
        try {
          states[ref] = await provider.power.getPowerState(ref, ctx);
          read = true;
        } catch (e) {
          states[ref] = 'unknown';
          error = { failure: e instanceof ProviderError ? e.failure : 'protocol', message: (e as Error).message };
        }
      }
      // One machine failing among readable ones is that machine's trouble, not the appliance's.
      return error && (!read || failsWholeAppliance(error.failure)) ? { states, error } : { states };
    }
    case 'enumerate': {
      const list = provider.management.listSystems;
      if (!list) throw new JobStepError('enumerate', 'unsupported', `${provider.type}: cannot list the systems behind this endpoint`);
      return { systems: await step('enumerate', () => list.call(provider.management, ctx)) };
    }
  }
}
