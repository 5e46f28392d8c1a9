import type { Store } from '../store/database.js';
import { headSeq } from './log.js';

/**
 * Tells waiting readers (SSE streams) that the log grew. One poll loop per controller, running
 * only while someone waits: it numbers committed events and reads the head `seq`. Polling the
 * table, not PostgreSQL's LISTEN/NOTIFY, so that it works the same on SQLite and sees every
 * controller's events on a shared PostgreSQL (docs/decisions.md).
 */
export class EventFeed {
  private head = 0;
  private waiters = new Set<{ after: number; wake: () => void }>();
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private stopping = false;

  constructor(
    private readonly store: Store,
    private readonly pollMs: number,
    private readonly onError: (e: unknown) => void = () => undefined,
  ) {}

  /**
   * Resolves once the log holds an event after `after` (at once if it already does), or when
   * `signal` aborts or the feed stops. Says nothing about which events: the reader reads them
   * with its own filter.
   */
  waitAfter(after: number, signal?: AbortSignal): Promise<void> {
    if (this.head > after || this.stopping || signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter = {
        after,
        wake: () => {
          this.waiters.delete(waiter);
          signal?.removeEventListener('abort', waiter.wake);
          resolve();
        },
      };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', waiter.wake, { once: true });
      this.schedule(0);
    });
  }

  /** The highest `seq` this feed has seen: every event up to it was numbered before. */
  get current(): number {
    return this.head;
  }

  get stopped(): boolean {
    return this.stopping;
  }

  stop(): void {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const w of [...this.waiters]) w.wake();
  }

  private schedule(ms: number): void {
    if (this.timer || this.polling || this.stopping || this.waiters.size === 0) return;
    this.timer = setTimeout(() => void this.poll(), ms);
    this.timer.unref?.();
  }

  private async poll(): Promise<void> {
    this.timer = null;
    this.polling = true;
    try {
      this.head = Math.max(this.head, await headSeq(this.store));
      for (const w of [...this.waiters]) if (this.head > w.after) w.wake();
    } catch (e) {
      this.onError(e);
    } finally {
      this.polling = false;
    }
    this.schedule(this.pollMs);
  }
}
