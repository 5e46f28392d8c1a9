import { useEffect, useRef } from 'preact/hooks';
import type { ApiClient } from '../../src/api/client-core.js';

/** How often a page that shows live data asks again while the tab is visible. */
const POLL_MS = 2000;

/**
 * Calls `onChange` when machines may have changed, so the page reloads what it shows without
 * the browser reloading the page.
 */
export function useLive(client: ApiClient, onChange: () => void, machine?: string): void {
  const cb = useRef(onChange);
  cb.current = onChange;
  useEffect(() => {
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') cb.current();
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [client, machine]);
}
