import type { LogBatch } from '../protocol/agent.js';
import type { AgentClient } from './client.js';

/**
 * The agent's log: every line goes to the console at once and to the controller in batches,
 * so the run keeps its installer log even when the machine is gone.
 */
export class LogShipper {
  private pending: Required<LogBatch['lines'][number]>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: AgentClient,
    private readonly console: (line: string) => void,
    private readonly intervalMs = 2000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  line(text: string, stream = 'agent'): void {
    for (const l of text.split('\n')) {
      this.console(`plinth-agent: ${l}`);
      this.pending.push({ at: new Date().toISOString(), stream, line: l });
    }
  }

  /** Sends what is pending; a failure keeps the lines for the next try. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.pending.length === 0) return;
      const batch = this.pending.splice(0, 1000);
      try {
        await this.client.post('/agent/v1/log', { lines: batch } satisfies LogBatch);
      } catch {
        this.pending.unshift(...batch);
      }
    });
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}
