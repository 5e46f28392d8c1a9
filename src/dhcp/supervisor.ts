import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * Keeps one child process running: started by `start`, started again with exponential
 * backoff whenever it dies, stopped (SIGTERM, then SIGKILL) by `stop`. Every line it writes
 * on stdout or stderr goes to `onLine`; `onQuiet` is called once the child has written
 * nothing for `quietMs`, so a reader of multi-line records can finish the last one without
 * waiting for the next record. (Not after each read: a record's lines can arrive in several
 * reads when the machine is busy, and finishing it early loses its later lines.)
 */
export interface SupervisorOptions {
  /** argv[0] and its arguments. */
  argv: string[];
  onLine: (line: string) => void;
  onQuiet?: () => void;
  /** Silence after which `onQuiet` is called (default 250 ms). */
  quietMs?: number;
  /** Lifecycle events: started, exited, restarting; never the child's output. */
  log: (event: 'started' | 'exited' | 'restarting' | 'failed-to-start', fields: Record<string, unknown>) => void;
  /** First restart delay; doubled after every early death, up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A child that ran this long before dying is restarted after `backoffMs` again. */
  healthyAfterMs?: number;
  /** Time between SIGTERM and SIGKILL on stop. */
  killAfterMs?: number;
}


export class Supervisor {
  private child: ChildProcess | null = null;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private quietTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  /** How many times the child was started (tests wait on it). */
  starts = 0;

  constructor(private readonly o: SupervisorOptions) {}

  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  start(): void {
    this.stopping = false;
    if (!this.child && !this.restartTimer) this.spawnChild();
  }

  private spawnChild(): void {
    this.restartTimer = null;
    if (this.stopping) return;
    const [cmd, ...args] = this.o.argv as [string, ...string[]];
    const startedAt = Date.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.starts++;
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        this.o.onLine(line);
        if (this.o.onQuiet) {
          // Every line restarts the wait: the child is quiet once it wrote nothing for quietMs.
          if (this.quietTimer) clearTimeout(this.quietTimer);
          this.quietTimer = setTimeout(() => {
            this.quietTimer = null;
            this.o.onQuiet?.();
          }, this.o.quietMs ?? 250);
        }
      });
    }
    let gone = false;
    const onGone = (code: number | null, signal: string | null, err?: Error) => {
      if (gone) return;
      gone = true;
      if (this.child === child) this.child = null;
      if (err) this.o.log('failed-to-start', { command: cmd, error: err.message });
      else this.o.log('exited', { command: cmd, code, signal });
      if (this.stopping) return;
      this.failures = Date.now() - startedAt >= (this.o.healthyAfterMs ?? 30_000) ? 1 : this.failures + 1;
      const delay = Math.min((this.o.backoffMs ?? 500) * 2 ** (this.failures - 1), this.o.maxBackoffMs ?? 30_000);
      this.o.log('restarting', { command: cmd, inMs: delay });
      this.restartTimer = setTimeout(() => this.spawnChild(), delay);
    };
    child.once('error', (e) => onGone(null, null, e));
    child.once('exit', (code, signal) => onGone(code, signal));
    child.once('spawn', () => this.o.log('started', { command: cmd, pid: child.pid }));
  }

  /** Stops the child and any restart; resolves when it has exited. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), this.o.killAfterMs ?? 5000);
      await exited;
      clearTimeout(kill);
    }
    this.child = null;
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = null;
    this.o.onQuiet?.();
  }
}
