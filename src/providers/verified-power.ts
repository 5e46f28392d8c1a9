/**
 * Power actions verified as Ironic verifies them (`conductor/utils.node_power_action`): a
 * BMC or hypervisor accepting an action says nothing about when, or whether, the system gets
 * there. sushy-tools in front of libvirt answers a reset at once and reports the old state for
 * a while after; a second action decided on such a read is skipped although the first has not
 * landed, and the system ends in the wrong state. So every action here is followed by reads
 * until the system shows the target (bounded by `timeoutMs`), and the next action is only
 * decided once the previous one has been seen to land. What is returned is what was read,
 * never what was asked for.
 */
import { abortableSleep } from './call-deadline.js';
import { ProviderError, type PowerState, type PowerTarget, type Provider, type ProviderContext } from './types.js';

export interface PowerVerifyOptions {
  /** How long to wait for the target state after an action before failing with `timeout`. */
  timeoutMs: number;
  /** Time between two reads while waiting. */
  intervalMs?: number;
}

/** Ironic polls once a second; half of that keeps a job short on fast hypervisors. */
const DEFAULT_INTERVAL_MS = 500;

/** Reads until the system shows `wanted`; fails with `timeout` naming the last state read. */
export async function awaitPowerState(provider: Provider, ref: string, wanted: 'on' | 'off', ctx: ProviderContext, verify: PowerVerifyOptions): Promise<PowerState> {
  const deadline = Date.now() + verify.timeoutMs;
  let last: PowerState = 'unknown';
  for (;;) {
    last = await provider.power.getPowerState(ref, ctx);
    if (last === wanted) return last;
    if (Date.now() >= deadline) break;
    await abortableSleep(Math.min(verify.intervalMs ?? DEFAULT_INTERVAL_MS, Math.max(1, deadline - Date.now())), ctx.signal);
  }
  throw new ProviderError(provider.type, 'timeout', `${ref} did not reach power '${wanted}' within ${verify.timeoutMs} ms (it reads '${last}')`);
}

/**
 * Carries out a power action and waits for its target state; returns the state read at the
 * end. `soft-off` only asks the OS to shut down (the contract in types.ts): its result is the
 * state read once the request was accepted, `off` only when the system already is.
 */
export async function verifiedPowerAction(provider: Provider, ref: string, target: PowerTarget | 'reboot', ctx: ProviderContext, verify: PowerVerifyOptions): Promise<PowerState> {
  if (target === 'reboot') {
    await provider.power.reboot(ref, ctx);
    return awaitPowerState(provider, ref, 'on', ctx, verify);
  }
  await provider.power.setPowerState(ref, target, ctx);
  if (target === 'soft-off') return provider.power.getPowerState(ref, ctx);
  return awaitPowerState(provider, ref, target, ctx, verify);
}
