import { runAgent, type AgentOutcome } from '../../src/agent/agent.js';
import { parseCmdline } from '../../src/agent/cmdline.js';
import { makeFacts } from './facts.js';

/**
 * A machine network-boots as iPXE would (its boot script from the controller at `url`) and
 * the real agent runs its run to the end, operators' scripts as real processes in
 * `scriptDir`. Only the hardware (the facts) and the power switch are stand-ins.
 */
export async function netbootAgent(url: string, m: { serial: string; mac: string; scriptDir: string }): Promise<AgentOutcome> {
  const res = await fetch(`${url}/boot/machine.ipxe?serial=${m.serial}&mac=${m.mac}`);
  const config = parseCmdline(/kernel \S+ (initrd=\S+ .*) \|\| goto/.exec(await res.text())![1]!)!;
  return runAgent({
    config,
    version: 'test',
    inspect: async () => makeFacts({ serial: m.serial, macs: [m.mac] }),
    power: { poweroff: async () => undefined, reboot: async () => undefined },
    console: () => undefined,
    scriptDir: m.scriptDir,
  });
}
