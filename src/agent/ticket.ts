/**
 * How an installer booted from the ISO (virtual media) gets its run: it has the controller's
 * URL from the kernel command line but no ticket, so it names itself by the identity a network
 * boot sends (SMBIOS UUID, serial, asset tag, maker, model, MAC addresses, read from sysfs) to
 * `GET /boot/agent-ticket`, and waits while the controller says so. The controller applies a
 * network boot's rules: enrolment, and a ticket only while no installer holds the run.
 */
import type { AgentTicketAnswer } from '../protocol/agent.js';
import type { AgentConfig } from './cmdline.js';

/** Reads a sysfs file, or undefined when absent or unreadable. */
export type ReadText = (path: string) => string | undefined;
export type ListDir = (path: string) => string[];

/** Values firmware puts in SMBIOS strings when it has nothing to say. */
const PLACEHOLDER = /^(|none|n\/a|not specified|to be filled by o\.e\.m\.|default string|0+|system serial number|chassis serial number)$/i;

/** The identity parameters of this machine, as /boot/machine.ipxe takes them from iPXE. */
export function identityQuery(read: ReadText, list: ListDir): URLSearchParams {
  const q = new URLSearchParams();
  const dmi = (file: string) => {
    const v = read(`/sys/class/dmi/id/${file}`)?.trim();
    return v && !PLACEHOLDER.test(v) ? v.slice(0, 128) : undefined;
  };
  const fields: Array<[string, string | undefined]> = [
    ['uuid', dmi('product_uuid')?.toLowerCase()],
    ['serial', dmi('product_serial')],
    ['asset', dmi('chassis_asset_tag')],
    ['manufacturer', dmi('sys_vendor')],
    ['product', dmi('product_name')],
  ];
  for (const [k, v] of fields) if (v) q.set(k, v);
  const macs = list('/sys/class/net')
    .filter((n) => n !== 'lo' && read(`/sys/class/net/${n}/device/uevent`) !== undefined)
    .sort()
    .map((n) => read(`/sys/class/net/${n}/address`)?.trim().toLowerCase())
    .filter((m): m is string => Boolean(m) && m !== '00:00:00:00:00:00');
  macs.slice(0, 8).forEach((m, i) => q.set(`mac${i}`, m));
  q.set('platform', 'vmedia');
  return q;
}

export interface TicketDeps {
  url: string;
  query: URLSearchParams;
  debug: boolean;
  console: (line: string) => void;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** How long to keep asking while the controller cannot be reached or says wait. */
  giveUpAfterMs?: number;
}

/** Asks until the controller hands a ticket (the agent's config) or says there is nothing to run (null). */
export async function askForTicket(d: TicketDeps): Promise<AgentConfig | null> {
  const f = d.fetch ?? globalThis.fetch;
  const sleep = d.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const until = Date.now() + (d.giveUpAfterMs ?? 30 * 60_000);
  const target = `${d.url}/boot/agent-ticket?${d.query.toString()}`;
  let lastSaid = '';
  const say = (line: string) => {
    if (line !== lastSaid) d.console(line);
    lastSaid = line;
  };
  for (;;) {
    let pause = 5;
    try {
      const res = await f(target, { signal: AbortSignal.timeout(30_000) });
      const text = await res.text();
      if (res.status >= 400 && res.status < 500) {
        d.console(`plinth-agent: the controller refused the ticket request: HTTP ${res.status}: ${text.slice(0, 300)}`);
        return null;
      }
      if (res.ok) {
        const answer = JSON.parse(text) as AgentTicketAnswer;
        if (answer.decision === 'ticket') {
          d.console(`plinth-agent: machine ${answer.machine}, run ${answer.runId}`);
          return { url: d.url, runId: answer.runId, token: answer.token, debug: d.debug };
        }
        if (answer.decision === 'none') {
          d.console(`plinth-agent: nothing to run: ${answer.why}`);
          return null;
        }
        pause = answer.retryAfterSeconds;
        say(`plinth-agent: waiting: ${answer.why}`);
      } else say(`plinth-agent: the controller answered HTTP ${res.status}; asking again`);
    } catch (e) {
      say(`plinth-agent: cannot reach ${d.url}: ${(e as Error).message}; asking again`);
    }
    if (Date.now() + pause * 1000 > until) {
      d.console('plinth-agent: gave up asking the controller for a run');
      return null;
    }
    await sleep(pause * 1000);
  }
}
