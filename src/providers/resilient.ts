/**
 * The resilience layer every provider goes through (the registry wraps them all):
 *
 * - **bounded concurrency per endpoint** — BMCs serve a few requests at a time and some
 *   fail outright when asked for more, so operations on one endpoint queue (default 1 at a
 *   time) while other endpoints proceed independently;
 * - **a timeout on every call** — `ctx.timeoutMs` per attempt, enforced here even if a
 *   provider ignored its signal, and also bounding the wait for a free slot;
 * - **retries with jittered exponential backoff for transient failures only**
 *   (`ProviderError.retryable`); `auth`, `unsupported`, `not-found` and `protocol` are never
 *   retried, so a wrong password produces one failed login, not a storm. A reboot is retried
 *   only when the endpoint was unreachable, because after a timeout or a 5xx the reset may
 *   already have happened;
 * - **a circuit breaker per endpoint** — after K consecutive failures (timeouts,
 *   unreachability, 5xx, and refused credentials, which BMCs punish with account lockout)
 *   the endpoint fails fast with a clear error for a cool-down, then one probe call decides
 *   whether it closes again. One dead BMC therefore costs its callers milliseconds, not
 *   timeouts, and never stalls the others.
 *
 * Time comes from `ResilienceTimers` so that tests run backoff, timeouts and cool-downs on a
 * fake clock.
 */
import { createHash } from 'node:crypto';
import { abortableSleep } from './call-deadline.js';
import {
  ProviderError,
  type BootDevice,
  type BootOptions,
  type Endpoint,
  type ManagementInterface,
  type PowerInterface,
  type PowerTarget,
  type Provider,
  type ProviderContext,
  type ProviderFailure,
} from './types.js';

export interface ResilienceTimers {
  /** Milliseconds since an arbitrary origin. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemTimers: ResilienceTimers = {
  now: () => Date.now(),
  sleep: abortableSleep,
};

export interface ResilienceOptions {
  /** Operations in flight at a time per endpoint (default 1). */
  concurrency?: number;
  /** Attempts per call, the first included (default 3). */
  attempts?: number;
  /** First backoff delay; doubles per retry, full jitter (default 250 ms). */
  baseDelayMs?: number;
  /** Upper bound of one backoff delay (default 5 s). */
  maxDelayMs?: number;
  /** Consecutive failures that open the circuit (default 5). */
  failureThreshold?: number;
  /** How long an open circuit fails fast before one probe is let through (default 30 s). */
  coolDownMs?: number;
  timers?: ResilienceTimers;
  /** Source of jitter in [0, 1) (default Math.random). */
  random?: () => number;
}

type Resolved = Required<ResilienceOptions>;

const DEFAULTS: Omit<Resolved, 'timers' | 'random'> = {
  concurrency: 1,
  attempts: 3,
  baseDelayMs: 250,
  maxDelayMs: 5_000,
  failureThreshold: 5,
  coolDownMs: 30_000,
};

/** Failures that say something about the endpoint's health (and so feed the breaker). */
const BREAKER_FAILURES: ReadonlySet<ProviderFailure> = new Set(['timeout', 'unreachable', 'transient', 'auth']);

/** Which failures a kind of operation may retry. */
type RetryPolicy = 'idempotent' | 'not-idempotent' | 'never';
const RETRYABLE: Record<RetryPolicy, ReadonlySet<ProviderFailure>> = {
  idempotent: new Set(['timeout', 'unreachable', 'transient']),
  'not-idempotent': new Set(['unreachable']),
  never: new Set(),
};

export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * One provider call as its caller saw it: from the call to its answer, retries, backoff and
 * the wait for a slot included. `failure` is null when it succeeded, the ProviderFailure
 * when it failed with one, `error` for anything else thrown.
 */
export interface ProviderCallRecord {
  provider: string;
  operation: string;
  durationMs: number;
  failure: ProviderFailure | 'error' | null;
}

export type ProviderCallObserver = (call: ProviderCallRecord) => void;

/** Thrown without contacting the endpoint while its circuit is open. */
export class CircuitOpenError extends ProviderError {
  readonly endpoint: string;
  /** When a probe call will be let through again (epoch ms of the timers in use). */
  readonly retryAt: number;
  constructor(provider: string, endpoint: string, consecutiveFailures: number, last: ProviderError | undefined, retryAt: number, waitMs: number) {
    super(
      provider,
      last?.failure === 'auth' ? 'auth' : 'unreachable',
      `${endpoint} is failing (${consecutiveFailures} consecutive failures${last ? `, last: ${last.message}` : ''}); ` +
        `not contacting it for another ${Math.max(0, Math.ceil(waitMs / 1000))} s`,
      last,
    );
    this.name = 'CircuitOpenError';
    this.endpoint = endpoint;
    this.retryAt = retryAt;
  }
}

export interface EndpointHealth {
  circuit: CircuitState;
  consecutiveFailures: number;
  inFlight: number;
  queued: number;
}

/**
 * The key under which an appliance's provider, slots and breaker are kept: one per appliance
 * and credentials, not per address. Otherwise an appliance with a wrong password opens the
 * breaker of a correct one at the same address, and providers holding different credentials
 * replace each other's sessions. The credentials are represented by a digest, never in clear.
 * `appliance` names the registered appliance; callers without one are told apart by
 * credentials alone.
 */
export function endpointKey(type: string, endpoint: Pick<Endpoint, 'address' | 'username' | 'password'>, appliance?: string): string {
  const credentials = createHash('sha256')
    .update(JSON.stringify([endpoint.username ?? '', endpoint.password ?? '']))
    .digest('hex')
    .slice(0, 16);
  return `${type}|${endpoint.address}|${appliance ?? '-'}|${credentials}`;
}

interface Waiter {
  grant(): void;
}

class EndpointGuard {
  private inFlight = 0;
  private readonly waiting: Waiter[] = [];
  private failures = 0;
  private circuit: CircuitState = 'closed';
  private openedAt = 0;
  private probing = false;
  private lastError: ProviderError | undefined;

  constructor(
    private readonly provider: string,
    private readonly label: string,
    private readonly options: Resolved,
  ) {}

  health(): EndpointHealth {
    return { circuit: this.circuit, consecutiveFailures: this.failures, inFlight: this.inFlight, queued: this.waiting.length };
  }

  /** Runs one call and tells the observers how it went and how long it took. */
  async observed<T>(operation: string, policy: RetryPolicy, ctx: ProviderContext, call: (ctx: ProviderContext) => Promise<T>, observers: ReadonlySet<ProviderCallObserver>): Promise<T> {
    if (observers.size === 0) return this.run(operation, policy, ctx, call);
    const started = this.options.timers.now();
    const report = (failure: ProviderCallRecord['failure']) => {
      const record = { provider: this.provider, operation, durationMs: this.options.timers.now() - started, failure };
      for (const o of observers) {
        try {
          o(record);
        } catch {
          // An observer (metrics) never changes what the caller gets.
        }
      }
    };
    try {
      const result = await this.run(operation, policy, ctx, call);
      report(null);
      return result;
    } catch (err) {
      report(err instanceof ProviderError ? err.failure : 'error');
      throw err;
    }
  }

  async run<T>(operation: string, policy: RetryPolicy, ctx: ProviderContext, call: (ctx: ProviderContext) => Promise<T>): Promise<T> {
    const isProbe = this.admit();
    try {
      await this.acquire(ctx);
    } catch (err) {
      if (isProbe) this.probing = false;
      throw err;
    }
    try {
      const attempts = isProbe ? 1 : Math.max(1, this.options.attempts);
      for (let attempt = 1; ; attempt++) {
        // The circuit may have opened while this call waited for its slot.
        if (!isProbe && this.circuit !== 'closed') throw this.openError();
        try {
          const result = await this.attempt(ctx, call);
          this.succeeded();
          return result;
        } catch (err) {
          const failure = err instanceof ProviderError ? err : undefined;
          if (failure && BREAKER_FAILURES.has(failure.failure)) this.failed(failure, isProbe);
          const retry = failure !== undefined && RETRYABLE[policy].has(failure.failure) && attempt < attempts && this.circuit === 'closed' && !ctx.signal?.aborted;
          if (!retry) throw err;
          const delay = this.backoff(attempt);
          ctx.log.warn('provider call failed, retrying', { provider: this.provider, endpoint: this.label, operation, attempt, delayMs: delay, failure: failure.failure });
          await this.options.timers.sleep(delay, ctx.signal);
        }
      }
    } finally {
      if (isProbe) this.probing = false;
      this.release();
    }
  }

  /** Decides whether a call may proceed; returns true when it is the half-open probe. */
  private admit(): boolean {
    if (this.circuit === 'closed') return false;
    if (this.circuit === 'open') {
      if (this.options.timers.now() - this.openedAt < this.options.coolDownMs) throw this.openError();
      this.circuit = 'half-open';
    }
    if (this.probing) throw this.openError();
    this.probing = true;
    return true;
  }

  private openError(): CircuitOpenError {
    const retryAt = this.openedAt + this.options.coolDownMs;
    return new CircuitOpenError(this.provider, this.label, this.failures, this.lastError, retryAt, retryAt - this.options.timers.now());
  }

  private succeeded(): void {
    this.failures = 0;
    this.lastError = undefined;
    this.circuit = 'closed';
  }

  private failed(error: ProviderError, isProbe: boolean): void {
    this.failures++;
    this.lastError = error;
    if (isProbe || this.failures >= this.options.failureThreshold) {
      this.circuit = 'open';
      this.openedAt = this.options.timers.now();
    }
  }

  private backoff(attempt: number): number {
    const ceiling = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (attempt - 1));
    // Full jitter: callers that failed together do not retry together.
    return Math.round(ceiling / 2 + (this.options.random() * ceiling) / 2);
  }

  /** One attempt, bounded by ctx.timeoutMs on this layer's clock whatever the provider does. */
  private async attempt<T>(ctx: ProviderContext, call: (ctx: ProviderContext) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const onOuterAbort = (): void => controller.abort(ctx.signal?.reason);
    if (ctx.signal?.aborted) controller.abort(ctx.signal.reason);
    else ctx.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const timerStop = new AbortController();
    const timeout = this.options.timers.sleep(ctx.timeoutMs, timerStop.signal).then(
      () => {
        const err = new ProviderError(this.provider, 'timeout', `${this.label}: no answer within ${ctx.timeoutMs} ms`);
        controller.abort(err);
        throw err;
      },
      () => new Promise<never>(() => undefined),
    );
    try {
      return await Promise.race([call({ ...ctx, signal: controller.signal }), timeout]);
    } finally {
      timerStop.abort();
      ctx.signal?.removeEventListener('abort', onOuterAbort);
    }
  }

  private async acquire(ctx: ProviderContext): Promise<void> {
    if (this.inFlight < this.options.concurrency) {
      this.inFlight++;
      return;
    }
    let granted = false;
    let wake: () => void = () => undefined;
    const slot = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const waiter: Waiter = {
      grant: () => {
        granted = true;
        wake();
      },
    };
    this.waiting.push(waiter);
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    if (ctx.signal?.aborted) stop.abort();
    else ctx.signal?.addEventListener('abort', onAbort, { once: true });
    const expired = this.options.timers.sleep(ctx.timeoutMs, stop.signal).then(
      () => 'expired' as const,
      () => 'aborted' as const,
    );
    const outcome = await Promise.race([slot.then(() => 'granted' as const), expired]);
    stop.abort();
    ctx.signal?.removeEventListener('abort', onAbort);
    // A slot handed over in the same turn as the timeout is still ours (inFlight counts it).
    if (granted) return;
    this.waiting.splice(this.waiting.indexOf(waiter), 1);
    throw outcome === 'aborted'
      ? new ProviderError(this.provider, 'timeout', `${this.label}: cancelled while waiting for a free slot`, ctx.signal?.reason)
      : new ProviderError(this.provider, 'timeout', `${this.label}: waited ${ctx.timeoutMs} ms for a free slot (${this.options.concurrency} operation(s) at a time on this endpoint)`);
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next.grant(); // the slot passes to the next caller: inFlight stays the same
    else this.inFlight--;
  }
}

/**
 * Holds the slots and breakers of every endpoint, and wraps providers so their calls go
 * through them. One instance per process (or per test) so that every provider built for
 * the same endpoint shares that endpoint's limits.
 */
export class ProviderResilience {
  private readonly options: Resolved;
  private readonly guards = new Map<string, EndpointGuard>();
  private readonly observers = new Set<ProviderCallObserver>();

  constructor(options: ResilienceOptions = {}) {
    this.options = { ...DEFAULTS, timers: systemTimers, random: Math.random, ...stripUndefined(options) };
  }

  /** Health of one endpoint (closed circuit and nothing in flight when never used). */
  health(key: string): EndpointHealth {
    return this.guards.get(key)?.health() ?? { circuit: 'closed', consecutiveFailures: 0, inFlight: 0, queued: 0 };
  }

  /**
   * Calls `observer` after every provider call made through this layer (metrics); returns
   * the function that stops it. Observers run synchronously and must not throw.
   */
  observe(observer: ProviderCallObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Drops an endpoint's breaker and failure count (its settings changed); calls in flight finish on the old guard. */
  forget(key: string): void {
    this.guards.delete(key);
  }

  private guard(provider: string, key: string, label: string): EndpointGuard {
    let g = this.guards.get(key);
    if (!g) {
      g = new EndpointGuard(provider, label, this.options);
      this.guards.set(key, g);
    }
    return g;
  }

  /**
   * A provider with the same contract whose calls are limited, timed, retried and broken per
   * key (see endpointKey); `label` names the endpoint in messages (by default the key after
   * the provider type).
   */
  wrap(inner: Provider, key: string, label = key.slice(key.indexOf('|') + 1)): Provider {
    const guard = this.guard(inner.type, key, label);
    const run = <T>(operation: string, policy: RetryPolicy, ctx: ProviderContext, call: (ctx: ProviderContext) => Promise<T>): Promise<T> =>
      guard.observed(operation, policy, ctx, call, this.observers);
    const m = inner.management;
    const power: PowerInterface = {
      getPowerState: (ref, ctx) => run('getPowerState', 'idempotent', ctx, (c) => inner.power.getPowerState(ref, c)),
      setPowerState: (ref, target: PowerTarget, ctx) => run('setPowerState', 'idempotent', ctx, (c) => inner.power.setPowerState(ref, target, c)),
      reboot: (ref, ctx) => run('reboot', 'not-idempotent', ctx, (c) => inner.power.reboot(ref, c)),
    };
    const management: ManagementInterface = {
      setBootDevice: (ref, device: BootDevice, options: BootOptions, ctx) =>
        run('setBootDevice', 'idempotent', ctx, (c) => m.setBootDevice(ref, device, options, c)),
    };
    if (m.insertVirtualMedia) {
      const insert = m.insertVirtualMedia.bind(m);
      management.insertVirtualMedia = (ref, url, ctx) => run('insertVirtualMedia', 'idempotent', ctx, (c) => insert(ref, url, c));
    }
    if (m.ejectVirtualMedia) {
      const eject = m.ejectVirtualMedia.bind(m);
      management.ejectVirtualMedia = (ref, ctx) => run('ejectVirtualMedia', 'idempotent', ctx, (c) => eject(ref, c));
    }
    if (m.listSystems) {
      const list = m.listSystems.bind(m);
      management.listSystems = (ctx) => run('listSystems', 'idempotent', ctx, (c) => list(c));
    }
    const wrapped: Provider = { type: inner.type, capabilities: inner.capabilities, power, management };
    if (inner.close) wrapped.close = () => inner.close!();
    return wrapped;
  }
}

function stripUndefined(options: ResilienceOptions): Partial<Resolved> {
  const out: Partial<Resolved> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
