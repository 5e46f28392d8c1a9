import { useEffect, useRef } from 'preact/hooks';
import type { ApiClient } from '../../src/api/client-core.js';

/** Events that come in a burst (a bulk action, an enlist) cause one refresh, this long after the first. */
const COALESCE_MS = 300;
/** After the stream fails (controller restarting, connection cut), it is opened again this much later. */
const RETRY_MS = 5000;
/** A machine's page reads what changes without an event (a boot trace's stages) this often while the tab is visible. */
const SLOW_POLL_MS = 15000;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/**
 * Calls `onChange` when what the page shows may have changed: on every event of the
 * controller's event stream (SSE, `GET /api/v1/events/stream`; only the machine's events when
 * `machine` is given), bursts coalesced into one call. The page then reads what it shows again
 * without the browser reloading. Each time the stream is opened, the page is read once more, so
 * an event between the page's first read and the stream's start is not missed; when the stream
 * fails the page is read and the stream opened again a little later.
 */
export function useLive(client: ApiClient, onChange: () => void, machine?: string): void {
  const cb = useRef(onChange);
  cb.current = onChange;
  useEffect(() => {
    const stop = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const changed = () => {
      if (timer !== undefined || stop.signal.aborted) return;
      timer = setTimeout(() => {
        timer = undefined;
        cb.current();
      }, COALESCE_MS);
    };
    void (async () => {
      let first = true;
      while (!stop.signal.aborted) {
        try {
          const events = client.followEvents(machine ? { machine } : {}, stop.signal);
          if (!first) changed();
          first = false;
          // The first event read opens the connection; what happened before it is read again once it is open.
          const opened = setTimeout(changed, 1000);
          try {
            for await (const _ of events) changed();
          } finally {
            clearTimeout(opened);
          }
        } catch {
          /* unreachable or refused: read the page again and retry below */
        }
        if (stop.signal.aborted) return;
        changed();
        await sleep(RETRY_MS, stop.signal);
      }
    })();
    // A machine's page also shows what has no event (boot trace stages): it is read again now and then.
    const slow = machine
      ? setInterval(() => {
          if (document.visibilityState === 'visible') changed();
        }, SLOW_POLL_MS)
      : undefined;
    return () => {
      stop.abort();
      clearTimeout(timer);
      clearInterval(slow);
    };
  }, [client, machine]);
}
