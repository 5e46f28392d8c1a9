import { describe, expect, it } from 'vitest';
import { Supervisor } from './supervisor.js';

const until = async (what: string, check: () => boolean) => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  if (!check()) throw new Error(`${what}: not reached`);
};

describe('process supervisor', () => {
  it('passes every output line on, restarts a child that dies with growing pauses, and stops for good', async () => {
    const lines: string[] = [];
    const events: { event: string; inMs?: unknown }[] = [];
    let quiet = 0;
    const s = new Supervisor({
      argv: [process.execPath, '-e', 'console.log("out"); console.error("err"); process.exit(3)'],
      onLine: (l) => lines.push(l),
      onQuiet: () => quiet++,
      log: (event, fields) => events.push({ event, inMs: fields.inMs }),
      backoffMs: 5,
      maxBackoffMs: 20,
    });
    s.start();
    await until('three restarts', () => events.filter((e) => e.event === 'restarting').length >= 3);
    await s.stop();
    const starts = s.starts;
    expect(lines).toContain('out');
    expect(lines).toContain('err');
    expect(quiet).toBeGreaterThan(0);
    const delays = events.filter((e) => e.event === 'restarting').map((e) => e.inMs);
    expect(delays.slice(0, 3)).toEqual([5, 10, 20]);
    expect(events.some((e) => e.event === 'exited')).toBe(true);
    // Stopped: no restart is pending any more.
    await new Promise((r) => setTimeout(r, 60));
    expect(s.starts).toBe(starts);
    expect(s.running).toBe(false);
  });

  it('stops a running child (SIGTERM) and says when a program is missing', async () => {
    const s = new Supervisor({ argv: [process.execPath, '-e', 'setInterval(() => {}, 1000)'], onLine: () => {}, log: () => {} });
    s.start();
    await until('running', () => s.pid !== null);
    const pid = s.pid!;
    await s.stop();
    expect(() => process.kill(pid, 0)).toThrow();

    const failed: unknown[] = [];
    const m = new Supervisor({ argv: ['/nonexistent/dnsmasq'], onLine: () => {}, log: (e, f) => e === 'failed-to-start' && failed.push(f), backoffMs: 5 });
    m.start();
    await until('failed to start', () => failed.length > 0);
    await m.stop();
    expect(failed[0]).toMatchObject({ command: '/nonexistent/dnsmasq' });
  });
});
