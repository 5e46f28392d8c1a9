/**
 * The resilience layer on a fake clock with a fake provider: the fake stands for "some
 * platform"; what is under test is the wrapper's queueing, timing, retrying and breaking.
 */
import { describe, expect, it } from 'vitest';
import { CircuitOpenError, ProviderResilience, type ResilienceOptions, type ResilienceTimers } from './resilient.js';
import { ProviderError, type Capability, type PowerState, type Provider, type ProviderContext, type ProviderFailure } from './types.js';

class ManualTimers implements ResilienceTimers {
  private t = 0;
  private pending: Array<{ at: number; resolve: () => void }> = [];
  readonly sleeps: number[] = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const entry = { at: this.t + ms, resolve };
      this.pending.push(entry);
      signal?.addEventListener(
        'abort',
        () => {
          this.pending = this.pending.filter((p) => p !== entry);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Moves time forward, firing due sleeps in order and letting their continuations run. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      await flush();
      const due = this.pending.filter((p) => p.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.pending = this.pending.filter((p) => p !== due);
      this.t = due.at;
      due.resolve();
    }
    this.t = target;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

type Behaviour = (call: number, signal: AbortSignal | undefined) => Promise<PowerState>;

class FakeProvider implements Provider {
  readonly type = 'ipmi' as const;
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>(['power']);
  calls = 0;
  active = 0;
  maxActive = 0;
  lastSignal: AbortSignal | undefined;
  constructor(private behaviour: Behaviour) {}
  setBehaviour(b: Behaviour): void {
    this.behaviour = b;
  }
  private async invoke(ctx: ProviderContext): Promise<PowerState> {
    this.calls++;
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    this.lastSignal = ctx.signal;
    try {
      return await this.behaviour(this.calls, ctx.signal);
    } finally {
      this.active--;
    }
  }
  readonly power = {
    getPowerState: (_ref: string, ctx: ProviderContext) => this.invoke(ctx),
    setPowerState: async (_ref: string, _t: unknown, ctx: ProviderContext) => {
      await this.invoke(ctx);
    },
    reboot: async (_ref: string, ctx: ProviderContext) => {
      await this.invoke(ctx);
    },
  };
  readonly management = { setBootDevice: async () => undefined };
}

const fail = (failure: ProviderFailure) => () => Promise.reject(new ProviderError('ipmi', failure, `simulated ${failure}`));
const succeed = () => () => Promise.resolve<PowerState>('on');
const hang = () => () => new Promise<PowerState>(() => undefined);

function setup(behaviour: Behaviour, options: ResilienceOptions = {}) {
  const timers = new ManualTimers();
  const resilience = new ProviderResilience({ timers, random: () => 0, ...options });
  const fake = new FakeProvider(behaviour);
  const provider = resilience.wrap(fake, 'ipmi|10.0.0.1');
  const ctx: ProviderContext = { timeoutMs: 1_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };
  return { timers, resilience, fake, provider, ctx };
}

/** Starts a call and captures its outcome without letting a rejection go unhandled. */
function start<T>(promise: Promise<T>): { settled: () => boolean; result: () => Promise<T> } {
  let done = false;
  const settled = promise.then(
    (v) => {
      done = true;
      return { ok: true as const, v };
    },
    (e: unknown) => {
      done = true;
      return { ok: false as const, e };
    },
  );
  return {
    settled: () => done,
    result: async () => {
      const r = await settled;
      if (r.ok) return r.v;
      throw r.e;
    },
  };
}

describe('ProviderResilience: retries', () => {
  it('retries transient failures with growing jittered backoff, then succeeds', async () => {
    const { timers, fake, provider, ctx } = setup((n) => (n < 3 ? fail('transient')() : succeed()()));
    const call = start(provider.power.getPowerState('bmc', ctx));
    await timers.advance(10_000);
    await expect(call.result()).resolves.toBe('on');
    expect(fake.calls).toBe(3);
    // random() = 0 → half the exponential ceiling: 125 ms, then 250 ms (timeouts are 1000 ms sleeps).
    expect(timers.sleeps.filter((ms) => ms !== 1_000)).toEqual([125, 250]);
  });

  it('gives up after the configured attempts with the last error', async () => {
    const { timers, fake, provider, ctx } = setup(fail('unreachable'), { attempts: 4, failureThreshold: 100 });
    const call = start(provider.power.getPowerState('bmc', ctx));
    await timers.advance(60_000);
    await expect(call.result()).rejects.toMatchObject({ failure: 'unreachable' });
    expect(fake.calls).toBe(4);
  });

  it('never retries an auth failure (no retry storm against a BMC that locks accounts)', async () => {
    const { timers, fake, provider, ctx } = setup(fail('auth'));
    const call = start(provider.power.getPowerState('bmc', ctx));
    await timers.advance(60_000);
    await expect(call.result()).rejects.toMatchObject({ failure: 'auth' });
    expect(fake.calls).toBe(1);
  });

  it.each<ProviderFailure>(['unsupported', 'not-found', 'protocol'])('never retries %s', async (failure) => {
    const { timers, fake, provider, ctx } = setup(fail(failure));
    const call = start(provider.power.getPowerState('bmc', ctx));
    await timers.advance(60_000);
    await expect(call.result()).rejects.toMatchObject({ failure });
    expect(fake.calls).toBe(1);
  });

  it('retries a reboot only when the endpoint was unreachable (a timed-out reset may have happened)', async () => {
    const timedOut = setup(fail('timeout'));
    const a = start(timedOut.provider.power.reboot('bmc', timedOut.ctx));
    await timedOut.timers.advance(60_000);
    await expect(a.result()).rejects.toMatchObject({ failure: 'timeout' });
    expect(timedOut.fake.calls).toBe(1);

    const refused = setup((n) => (n === 1 ? fail('unreachable')() : succeed()()));
    const b = start(refused.provider.power.reboot('bmc', refused.ctx));
    await refused.timers.advance(60_000);
    await expect(b.result()).resolves.toBeUndefined();
    expect(refused.fake.calls).toBe(2);
  });

  it('stops retrying when the caller aborts during the backoff', async () => {
    const { timers, fake, provider, ctx } = setup(fail('transient'));
    const controller = new AbortController();
    const call = start(provider.power.getPowerState('bmc', { ...ctx, signal: controller.signal }));
    await timers.advance(1);
    controller.abort(new Error('shutting down'));
    await timers.advance(60_000);
    await expect(call.result()).rejects.toThrow();
    expect(fake.calls).toBe(1);
  });
});

describe('ProviderResilience: timeouts', () => {
  it('times out a call that never answers, and aborts the signal it gave the provider', async () => {
    const { timers, fake, provider, ctx } = setup(hang(), { attempts: 1 });
    const call = start(provider.power.getPowerState('bmc', ctx));
    await timers.advance(999);
    expect(call.settled()).toBe(false);
    await timers.advance(1);
    await expect(call.result()).rejects.toMatchObject({ failure: 'timeout' });
    expect(fake.lastSignal?.aborted).toBe(true);
  });

  it('bounds the wait for a free slot by the timeout too', async () => {
    const { timers, provider, ctx } = setup(hang(), { attempts: 1 });
    const first = start(provider.power.getPowerState('bmc', { ...ctx, timeoutMs: 10_000 }));
    const second = start(provider.power.getPowerState('bmc', ctx));
    await timers.advance(1_000);
    await expect(second.result()).rejects.toThrow(/free slot/);
    await timers.advance(10_000);
    await expect(first.result()).rejects.toMatchObject({ failure: 'timeout' });
  });
});

describe('ProviderResilience: concurrency per endpoint', () => {
  it('runs one operation at a time per endpoint by default, in arrival order', async () => {
    const order: number[] = [];
    const { timers, fake, provider, ctx } = setup(async (n) => {
      order.push(n);
      await new Promise((r) => setTimeout(r, 5));
      return 'on';
    });
    const calls = [1, 2, 3].map(() => start(provider.power.getPowerState('bmc', ctx)));
    for (const c of calls) await c.result();
    await timers.advance(0);
    expect(fake.maxActive).toBe(1);
    expect(order).toEqual([1, 2, 3]);
  });

  it('allows N at a time when configured', async () => {
    const { fake, provider, ctx } = setup(
      async () => {
        await new Promise((r) => setTimeout(r, 5));
        return 'on';
      },
      { concurrency: 2 },
    );
    await Promise.all([1, 2, 3, 4].map(() => provider.power.getPowerState('bmc', ctx)));
    expect(fake.maxActive).toBe(2);
  });
});

describe('ProviderResilience: circuit breaker', () => {
  it('opens after K consecutive failures and then fails fast without contacting the endpoint', async () => {
    const { timers, resilience, fake, provider, ctx } = setup(fail('unreachable'), { attempts: 1, failureThreshold: 3, coolDownMs: 30_000 });
    for (let i = 0; i < 3; i++) await expect(provider.power.getPowerState('bmc', ctx)).rejects.toMatchObject({ failure: 'unreachable' });
    expect(resilience.health('ipmi|10.0.0.1').circuit).toBe('open');
    const err = await provider.power.getPowerState('bmc', ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect((err as CircuitOpenError).message).toMatch(/^ipmi: 10\.0\.0\.1 is failing \(3 consecutive failures, last: ipmi: simulated unreachable\); not contacting it for another 30 s/);
    expect(fake.calls).toBe(3);
    await timers.advance(10_000);
    await expect(provider.power.getPowerState('bmc', ctx)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(fake.calls).toBe(3);
  });

  it('lets one probe through after the cool-down: success closes the circuit', async () => {
    const { timers, resilience, fake, provider, ctx } = setup(fail('timeout'), { attempts: 1, failureThreshold: 2, coolDownMs: 5_000 });
    for (let i = 0; i < 2; i++) await expect(provider.power.getPowerState('bmc', ctx)).rejects.toThrow();
    await timers.advance(5_000);
    let release: () => void = () => undefined;
    fake.setBehaviour(() => new Promise<PowerState>((r) => (release = () => r('off'))));
    const probe = start(provider.power.getPowerState('bmc', ctx));
    await timers.advance(0);
    expect(resilience.health('ipmi|10.0.0.1').circuit).toBe('half-open');
    // While the probe is out, everyone else still fails fast.
    await expect(provider.power.getPowerState('bmc', { ...ctx, timeoutMs: 50 })).rejects.toBeInstanceOf(CircuitOpenError);
    release();
    await expect(probe.result()).resolves.toBe('off');
    expect(resilience.health('ipmi|10.0.0.1')).toMatchObject({ circuit: 'closed', consecutiveFailures: 0 });
    fake.setBehaviour(succeed());
    await expect(provider.power.getPowerState('bmc', ctx)).resolves.toBe('on');
  });

  it('a failed probe opens the circuit for another cool-down', async () => {
    const { timers, resilience, fake, provider, ctx } = setup(fail('transient'), { attempts: 1, failureThreshold: 2, coolDownMs: 5_000 });
    for (let i = 0; i < 2; i++) await expect(provider.power.getPowerState('bmc', ctx)).rejects.toThrow();
    await timers.advance(5_000);
    await expect(provider.power.getPowerState('bmc', ctx)).rejects.toMatchObject({ failure: 'transient' });
    expect(fake.calls).toBe(3);
    expect(resilience.health('ipmi|10.0.0.1').circuit).toBe('open');
    await expect(provider.power.getPowerState('bmc', ctx)).rejects.toBeInstanceOf(CircuitOpenError);
  });

  it('counts refused credentials (BMCs lock accounts) and reports the open circuit as an auth failure', async () => {
    const { provider, ctx } = setup(fail('auth'), { failureThreshold: 2 });
    for (let i = 0; i < 2; i++) await expect(provider.power.getPowerState('bmc', ctx)).rejects.toMatchObject({ failure: 'auth' });
    const err = (await provider.power.getPowerState('bmc', ctx).catch((e: unknown) => e)) as CircuitOpenError;
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect(err.failure).toBe('auth');
    expect(err.retryable).toBe(false);
  });

  it('does not count failures that say nothing about the endpoint (unsupported, protocol)', async () => {
    const { resilience, provider, ctx } = setup(fail('unsupported'), { failureThreshold: 2 });
    for (let i = 0; i < 5; i++) await expect(provider.power.getPowerState('bmc', ctx)).rejects.toMatchObject({ failure: 'unsupported' });
    expect(resilience.health('ipmi|10.0.0.1')).toMatchObject({ circuit: 'closed', consecutiveFailures: 0 });
  });

  it('keeps one breaker per endpoint: a dead endpoint does not affect another', async () => {
    const timers = new ManualTimers();
    const resilience = new ProviderResilience({ timers, attempts: 1, failureThreshold: 2 });
    const dead = resilience.wrap(new FakeProvider(fail('unreachable')), 'ipmi|10.0.0.1');
    const alive = resilience.wrap(new FakeProvider(succeed()), 'ipmi|10.0.0.2');
    const ctx: ProviderContext = { timeoutMs: 1_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };
    for (let i = 0; i < 3; i++) await expect(dead.power.getPowerState('bmc', ctx)).rejects.toThrow();
    await expect(alive.power.getPowerState('bmc', ctx)).resolves.toBe('on');
    expect(resilience.health('ipmi|10.0.0.1').circuit).toBe('open');
    expect(resilience.health('ipmi|10.0.0.2').circuit).toBe('closed');
  });

  it('keeps the provider surface: type, capabilities, optional methods only where the inner has them', () => {
    const { provider, fake } = setup(succeed());
    expect(provider.type).toBe(fake.type);
    expect(provider.capabilities).toBe(fake.capabilities);
    expect(provider.management.listSystems).toBeUndefined();
    expect(provider.management.insertVirtualMedia).toBeUndefined();
  });
});
