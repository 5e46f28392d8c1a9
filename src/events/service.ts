import type { Store } from '../store/database.js';
import { EventFeed } from './feed.js';
import { headSeq, readEvents, type EventFilter, type LogEvent } from './log.js';

export interface EventPage {
  items: LogEvent[];
  /** Pass as `after` to continue: every event up to it was read (with the filter applied). */
  next: number;
}

/** Reading and following the event log (the API's `/events` and `/events/stream`). */
export class EventLog {
  readonly feed: EventFeed;

  constructor(
    private readonly store: Store,
    opts: { pollMs: number; onError?: (e: unknown) => void },
  ) {
    this.feed = new EventFeed(store, opts.pollMs, opts.onError);
  }

  /** The highest seq given: a stream that starts now starts after it. */
  head(): Promise<number> {
    return headSeq(this.store);
  }

  /** Events after `after`, oldest first, at most `limit`. */
  async list(q: EventFilter & { after: number; limit: number }): Promise<EventPage> {
    const head = await headSeq(this.store);
    const items = await readEvents(this.store, q);
    const last = items[items.length - 1]?.seq ?? q.after;
    // A short page read everything numbered before it: the reader may skip to the head.
    return { items, next: items.length < q.limit ? Math.max(last, head, q.after) : last };
  }

  /**
   * Batches of events after `after`, as they are committed, until `signal` aborts or the
   * feed stops. Never yields an empty batch.
   */
  async *follow(q: EventFilter & { after: number }, signal: AbortSignal): AsyncGenerator<LogEvent[]> {
    let scanned = q.after;
    while (!signal.aborted && !this.feed.stopped) {
      await this.feed.waitAfter(scanned, signal);
      if (signal.aborted || this.feed.stopped) return;
      const page = await this.list({ ...q, after: scanned, limit: 500 });
      scanned = page.next;
      if (page.items.length) yield page.items;
    }
  }

  stop(): void {
    this.feed.stop();
  }
}
