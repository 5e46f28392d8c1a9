// Entry point of the agent bundle (dist/agent/agent.mjs) that runs inside the installer.
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { parseCmdline } from './cmdline.js';
import { runAgent } from './agent.js';
import { collectFacts, nodeCommandRunner, nodeFactsFs } from './inspect/index.js';

declare const PLINTH_AGENT_VERSION: string;

const say = (line: string) => process.stdout.write(line + '\n');
const config = parseCmdline(readFileSync('/proc/cmdline', 'utf8'));
if (!config) {
  say('plinth-agent: no plinth.url / plinth.run / plinth.token on the kernel command line; nothing to do');
  process.exit(2);
}

const run = (cmd: string, args: string[]) =>
  new Promise<void>((resolve) => execFile(cmd, args, () => resolve()));
/** Power off or reboot now; sysrq is the fallback when the init system is absent. */
const power = {
  async poweroff() {
    await run('sync', []);
    await run('poweroff', ['-f']);
    await run('sh', ['-c', 'echo o > /proc/sysrq-trigger']);
  },
  async reboot() {
    await run('sync', []);
    await run('reboot', ['-f']);
    await run('sh', ['-c', 'echo b > /proc/sysrq-trigger']);
  },
};

const outcome = await runAgent({
  config,
  version: typeof PLINTH_AGENT_VERSION === 'string' ? PLINTH_AGENT_VERSION : 'dev',
  inspect: (log) => collectFacts(nodeCommandRunner(), nodeFactsFs(), { onProblem: (p) => log(`inspection: ${p.source}: ${p.message}`) }),
  power,
  console: say,
});
say(`plinth-agent: ${outcome.result}${'message' in outcome ? `: ${outcome.message}` : ''}`);
process.exit(outcome.result === 'done' ? 0 : outcome.result === 'rejected' ? 3 : 1);
