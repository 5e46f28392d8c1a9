// Entry point of the agent bundle (dist/agent/agent.mjs) that runs inside the installer.
import { readdirSync, readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { consoleRequested, parseCmdline, parseIsoCmdline } from './cmdline.js';
import { consoleMenu, NO_ORDERS } from './console/menu.js';
import { openInstallerConsoles } from './console/tty.js';
import { consolePower } from './console/power.js';
import { askForTicket, identityQuery } from './ticket.js';
import { runAgent } from './agent.js';
import { collectFacts, nodeCommandRunner, nodeFactsFs } from './inspect/index.js';
import { startSshServer } from './ssh-server.js';
import { nodeExec } from './steps/exec.js';
import { detachVirtioDevices } from './kexec-quiesce.js';

declare const PLINTH_AGENT_VERSION: string;

const say = (line: string) => process.stdout.write(line + '\n');
const cmdline = readFileSync('/proc/cmdline', 'utf8');
const iso = parseIsoCmdline(cmdline);
const tryRead = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};
const tryList = (path: string): string[] => {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
};

const run = (cmd: string, args: string[]) =>
  new Promise<void>((resolve) => execFile(cmd, args, () => resolve()));
/** Power off or reboot now; sysrq is the fallback when the init system is absent. */
const power = {
  async poweroff() {
    await run('sync', []);
    await run('poweroff', ['-f']);
    await run('sh', ['-c', 'echo o > /proc/sysrq-trigger']);
  },
  /** Boots the kernel a tree deploy loaded (kexec --load); returns only if that failed. */
  async kexec() {
    await run('sync', []);
    // Nothing may write into the new kernel's memory: the arrays stopped, virtio devices reset.
    await run('mdadm', ['--stop', '--scan']);
    const detached = detachVirtioDevices();
    if (detached.length) say(`plinth-agent: kexec: detached ${detached.join(', ')} from their drivers`);
    await run('kexec', ['--exec']);
  },
  async reboot() {
    await run('sync', []);
    await run('reboot', ['-f']);
    await run('sh', ['-c', 'echo b > /proc/sysrq-trigger']);
  },
};

// Booted from the ISO: the controller URL only; the run's ticket is asked for by identity.
const config = iso ? await askForTicket({ ...iso, query: identityQuery(tryRead, tryList), console: say }) : parseCmdline(cmdline);
if (!config) {
  if (!iso) say('plinth-agent: no plinth.url / plinth.run / plinth.token on the kernel command line; nothing to do');
  // plinth.console=1 without orders: the menu, without its install entry (no credential to install with).
  const term = consoleRequested(cmdline) ? openInstallerConsoles() : null;
  if (term) {
    const outcome = await consoleMenu({ term, machine: 'without orders', shell: () => term.shell(), disks: async () => [], noInstall: NO_ORDERS });
    // Reboot or power off: the only outcomes of a menu without its install entry.
    if (outcome.kind !== 'install') await consolePower(outcome.kind, { term, power });
  }
  process.exit(2);
}

const outcome = await runAgent({
  config,
  version: typeof PLINTH_AGENT_VERSION === 'string' ? PLINTH_AGENT_VERSION : 'dev',
  inspect: (log) => collectFacts(nodeCommandRunner(), nodeFactsFs(), { onProblem: (p) => log(`inspection: ${p.source}: ${p.message}`) }),
  power,
  console: say,
  sshServer: (params, log) => startSshServer(params, { exec: nodeExec(), log }),
  menuConsoles: () => openInstallerConsoles(),
});
say(`plinth-agent: ${outcome.result}${'message' in outcome ? `: ${outcome.message}` : ''}`);
process.exit(outcome.result === 'done' ? 0 : outcome.result === 'rejected' ? 3 : 1);
