/**
 * Every network or process call a provider makes is bounded twice: by the caller's
 * `ctx.signal` (shutdown, a cancelled job) and by `ctx.timeoutMs`. Both arrive at the
 * I/O layer as one AbortSignal, whose `reason` tells which of the two fired so that the
 * error can be classified as `timeout` rather than a generic abort.
 */
import type { ProviderContext } from './types.js';

/** Reason attached to the signal when the per-call timeout fires. */
export class CallTimeout extends Error {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'CallTimeout';
    this.timeoutMs = timeoutMs;
  }
}

export interface CallDeadline {
  signal: AbortSignal;
  /** Stops the timer; call it once the I/O has finished. */
  release(): void;
}

/** One AbortSignal that fires on `ctx.signal` or after `ctx.timeoutMs`, whichever comes first. */
export function callDeadline(ctx: Pick<ProviderContext, 'signal' | 'timeoutMs'>, timeoutMs: number = ctx.timeoutMs): CallDeadline {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(ctx.signal?.reason ?? new Error('aborted'));
  if (ctx.signal?.aborted) onAbort();
  else ctx.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new CallTimeout(timeoutMs)), Math.max(1, timeoutMs));
  timer.unref?.();
  return {
    signal: controller.signal,
    release: () => {
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** True when the signal fired because the per-call timeout elapsed. */
export function isTimeoutAbort(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof CallTimeout;
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts (for polling loops). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
