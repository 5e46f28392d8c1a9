/** What the installer's kernel command line tells the agent (see the boot service). */
export interface AgentConfig {
  /** Controller base URL as this machine reaches it. */
  url: string;
  runId: string;
  /** The run's ticket, used as is: the agent's first call with it claims the run for this installer. */
  token: string;
  debug: boolean;
}

/** Parses `plinth.url=… plinth.run=… plinth.token=…` out of /proc/cmdline; null when absent. */
export function parseCmdline(cmdline: string): AgentConfig | null {
  const args = new Map<string, string>();
  for (const word of cmdline.trim().split(/\s+/)) {
    const i = word.indexOf('=');
    if (i > 0) args.set(word.slice(0, i), word.slice(i + 1));
  }
  const url = args.get('plinth.url');
  const runId = args.get('plinth.run');
  const token = args.get('plinth.token');
  if (!url || !runId || !token) return null;
  return { url: url.replace(/\/+$/, ''), runId, token, debug: args.get('plinth.debug') === '1' };
}

/**
 * An installer booted from the ISO knows only the controller: `plinth.url=…` (and
 * `plinth.boot=vmedia`) without a run or ticket, which the agent then asks for (ticket.ts).
 * Null when the command line has no controller URL, or already a run and ticket.
 */
export function parseIsoCmdline(cmdline: string): { url: string; debug: boolean } | null {
  if (parseCmdline(cmdline)) return null;
  const words = cmdline.trim().split(/\s+/);
  const url = words.find((w) => w.startsWith('plinth.url='))?.slice('plinth.url='.length);
  if (!url || !words.includes('plinth.boot=vmedia')) return null;
  return { url: url.replace(/\/+$/, ''), debug: words.includes('plinth.debug=1') };
}

/** `plinth.console=1`: show the console menu (docs/console.md), also when the controller has no orders for this installer. */
export const consoleRequested = (cmdline: string): boolean => cmdline.trim().split(/\s+/).includes('plinth.console=1');
