import type { JobResult, JobSpec } from './jobs.js';
import { ProviderError, requireCapability, type Capability, type Provider, type ProviderContext } from '../providers/types.js';

/**
 * Carries out one provider job against a provider. No store, no API: the controller and the
 * remote manager both run jobs through here. A failure says which step failed (`boot-device`
 * or `power`), which the lifecycle turns into `lastError.code`.
 */
export class JobStepError extends Error {
  constructor(
    readonly step: 'boot-device' | 'power' | 'status' | 'enumerate',
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

const BOOT_CAPABILITY: Record<string, Capability> = { pxe: 'boot.pxe', disk: 'boot.disk', cd: 'boot.cd', 'uefi-http': 'boot.uefi-http' };

export async function executeJob(spec: JobSpec, provider: Provider, ctx: ProviderContext): Promise<JobResult> {
  switch (spec.kind) {
    case 'boot': {
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
      await step('power', () => (spec.then === 'reboot' ? provider.power.reboot(spec.ref, ctx) : provider.power.setPowerState(spec.ref, 'on', ctx)));
      return { power: 'on' };
    }
    case 'power': {
      await step('power', () => (spec.target === 'reboot' ? provider.power.reboot(spec.ref, ctx) : provider.power.setPowerState(spec.ref, spec.target, ctx)));
      return { power: spec.target === 'reboot' || spec.target === 'on' ? 'on' : 'off' };
    }
    case 'status':
      return { power: await step('status', () => provider.power.getPowerState(spec.ref, ctx)) };
    case 'sync': {
      const states: Record<string, 'on' | 'off' | 'unknown'> = {};
      for (const ref of spec.refs) {
        states[ref] = await provider.power.getPowerState(ref, ctx).catch(() => 'unknown' as const);
      }
      return { states };
    }
    case 'enumerate': {
      const list = provider.management.listSystems;
      if (!list) throw new JobStepError('enumerate', 'unsupported', `${provider.type}: cannot list the systems behind this endpoint`);
      return { systems: await step('enumerate', () => list.call(provider.management, ctx)) };
    }
  }
}
