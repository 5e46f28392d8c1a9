import type { CommandRegistrar } from './context.js';
import { collect, durationSeconds, oneOf, parsePairs, positiveInt } from './context.js';
import { UsageError } from './errors.js';
import { readSshKeyFiles } from './ssh-key-files.js';
import { readScriptFile, seconds } from './script.js';
import type { MachineView, RunView } from '../api/client.js';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { DEPLOY_METHODS, ON_SUCCESS, OS_SETTING_KEYS, OsSettingsSchema, SIZE_HINTS } from '../protocol/deploy.js';
import type { DiskLayout } from '../protocol/disk-layout.js';
import { MULTICAST_TRANSPORTS } from '../protocol/agent.js';

const HINT_NUMBERS = new Set<string>(SIZE_HINTS);

/** One flag per os.* setting, from its schema: `--os-timezone`, `--os-iso-url`, `--os-package` (repeatable). */
const OS_FLAGS = OS_SETTING_KEYS.map((key) => {
  const list = key === 'packages';
  const words = (list ? 'package' : key).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const option = `os${words.replace(/(^|-)([a-z])/g, (_m, _d: string, c: string) => c.toUpperCase())}`;
  const description = String((OsSettingsSchema.properties[key] as { description?: string }).description ?? key);
  return { key, list, flag: `--os-${words}`, option, description: `os.${key}: ${description}${list ? ' (repeatable)' : ''}` };
});

export const registerMachineDeploy: CommandRegistrar = (machine, ctx) => {
  const command = machine
    .command('deploy')
    .description('install an OS on available machines (or redeploy deployed ones); with --multicast, in one multicast session')
    .argument('<machines...>', 'names or ids')
    .option('--image <image>', 'image-store name (default: the profile\'s, else debian-12)')
    .option('--image-url <url>', 'fetch the image from this mirror instead of the controller')
    .option('--method <method>', 'image (default), tree, preseed, kickstart or autoinstall')
    .option('--tree <role-version>', 'deploy this tree (ROLE-VERSION, e.g. mysql-D7-F.1.0.0): lay out the disks and copy it (method tree)')
    .option('--on-success <action>', "tree deploys: kexec (default), reboot, halt or console (eDeploy's ONSUCCESS)")
    .option('--disk-layout <file>', "tree deploys: the disk layout, a YAML or JSON file (instead of the profile's)")
    .option('--ssh-key <file>', 'a public key file to authorise (repeatable)', collect, [])
    .option('--root-device <key=value>', 'root device hint: name, sizeGiB, serial, wwn, model, vendor… (repeatable)', collect, [])
    .option('--kernel-args <args>', "added to the installed system's kernel command line (instead of the profile's)")
    .option('--template <name>', "a template of the method's kind rendered in place of its main one (e.g. an override named rhel9.cfg)")
    .option('--reuse-run <run>', 'deploy again with the artifacts of this run, byte for byte')
    .option('--multicast', 'stream the image once to all the machines (udpcast, or uftp with --transport); each falls back to HTTP on its own')
    .option('--transport <tool>', 'multicast: udpcast (default) or uftp (encrypted; crosses routers with --ttl)')
    .option('--ttl <hops>', 'multicast with uftp: time-to-live, one more than the routers to cross (default 1)')
    .option('--rate <bits>', 'multicast rate cap in bits per second (default 200M)')
    .option('--min-receivers <n>', 'multicast: start once this many machines joined (default: the number of machines named)')
    .option('--max-wait <duration>', 'multicast: or this long after the first one joined (default 60s)')
    .option('--differential', "read each machine's disk first and fetch only the image's chunks it does not hold (default for a redeploy of the image it runs)")
    .option('--no-differential', 'write every chunk of the image, even on a redeploy of the image the machine runs')
    .option('--script <file>', 'image and tree deploys: a configure script run in the installer before the disks are touched, with the machine\'s variables (repeatable, in order; one that fails fails the deploy)', collect, [])
    .option('--script-timeout <seconds>', 'each configure script\'s time limit (default 3600)')
    .option('--reason <text>', 'why (recorded in the history)')
    .option('--json', 'print JSON');
  for (const f of OS_FLAGS) {
    if (f.list) command.option(`${f.flag} <value>`, f.description, collect, []);
    else command.option(`${f.flag} <value>`, f.description);
  }
  command.action(
    async (
      keys: string[],
      o: {
        image?: string;
        imageUrl?: string;
        method?: string;
        tree?: string;
        onSuccess?: string;
        diskLayout?: string;
        sshKey: string[];
        script: string[];
        scriptTimeout?: string;
        rootDevice: string[];
        kernelArgs?: string;
        template?: string;
        reuseRun?: string;
        reason?: string;
        json?: boolean;
        multicast?: boolean;
        differential?: boolean;
        rate?: string;
        transport?: string;
        ttl?: string;
        minReceivers?: string;
        maxWait?: string;
      } & Record<string, unknown>,
    ) => {
      if (!o.multicast && [o.rate, o.minReceivers, o.maxWait, o.transport, o.ttl].some((v) => v !== undefined)) throw new UsageError('--rate, --min-receivers, --max-wait, --transport and --ttl apply to --multicast deploys');
      const multicast = o.multicast
        ? {
            ...(o.transport !== undefined ? { transport: oneOf(o.transport, '--transport', MULTICAST_TRANSPORTS) } : {}),
            ...(o.rate !== undefined ? { rate: o.rate } : {}),
            minReceivers: o.minReceivers !== undefined ? positiveInt(o.minReceivers, '--min-receivers') : keys.length,
            ...(o.maxWait !== undefined ? { maxWaitSeconds: durationSeconds(o.maxWait, '--max-wait', { min: 1, max: 3600 }) } : {}),
            ...(o.ttl !== undefined ? { ttl: positiveInt(o.ttl, '--ttl') } : {}),
          }
        : null;
      const method = o.method ? oneOf(o.method, '--method', DEPLOY_METHODS) : undefined;
      const onSuccess = o.onSuccess ? oneOf(o.onSuccess, '--on-success', ON_SUCCESS) : undefined;
      let diskLayout: DiskLayout | undefined;
      if (o.diskLayout) {
        try {
          diskLayout = parseYaml(readFileSync(o.diskLayout, 'utf8')) as DiskLayout;
        } catch (e) {
          throw new UsageError(`--disk-layout: ${o.diskLayout}: ${(e as Error).message.split('\n')[0]}`);
        }
      }
      const sshKeys = readSshKeyFiles(o.sshKey);
      const timeoutSeconds = seconds(o.scriptTimeout, '--script-timeout');
      if (timeoutSeconds !== undefined && !o.script.length) throw new UsageError('--script-timeout applies to --script');
      const scripts = o.script.map((f) => ({ ...readScriptFile(f), ...(timeoutSeconds ? { timeoutSeconds } : {}) }));
      const os = Object.fromEntries(OS_FLAGS.flatMap((f) => (f.list ? ((o[f.option] as string[]).length ? [[f.key, o[f.option]]] : []) : o[f.option] !== undefined ? [[f.key, o[f.option]]] : [])));
      const hints = Object.fromEntries(Object.entries(parsePairs(o.rootDevice, '--root-device')).map(([k, v]) => [k, HINT_NUMBERS.has(k) ? Number(v) : v]));
      const client = ctx.client();
      const results = [];
      // One after the other: the first opens the multicast session, the others join it while it waits for them.
      for (const key of keys) {
        const current = await client.getMachine(key);
        const action = current.state === 'deployed' ? 'redeploy' : current.state === 'deploy-failed' ? 'retry' : 'deploy';
        const r = await client.action(key, action, {
          ...(o.image ? { image: o.image } : {}),
          ...(o.imageUrl ? { imageUrl: o.imageUrl } : {}),
          ...(method ? { method } : {}),
          ...(o.tree ? { tree: o.tree } : {}),
          ...(onSuccess ? { onSuccess } : {}),
          ...(diskLayout !== undefined ? { diskLayout } : {}),
          ...(sshKeys.length ? { sshKeys } : {}),
          ...(scripts.length ? { scripts } : {}),
          ...(Object.keys(hints).length ? { rootDeviceHints: hints } : {}),
          ...(Object.keys(os).length ? { os } : {}),
          ...(o.kernelArgs !== undefined ? { kernelArgs: o.kernelArgs } : {}),
          ...(o.template ? { template: o.template } : {}),
          ...(o.reuseRun ? { reuseRun: o.reuseRun } : {}),
          ...(multicast ? { multicast } : {}),
          ...(o.differential !== undefined ? { differential: o.differential } : {}),
          ...(o.reason ? { reason: o.reason } : {}),
        });
        results.push(r);
        const m: MachineView = r.machine;
        const run: RunView | null = r.run;
        if (o.json) continue;
        if (m.state === 'deploy-failed') throw new Error(`deploy of ${m.name} failed: [${m.lastError?.code}] ${m.lastError?.message}`);
        ctx.out.line(`${m.name}: ${m.state}${run ? ` (run ${run.id})` : ''}`);
      }
      if (o.json) ctx.out.json(keys.length === 1 ? results[0] : results);
    },
  );
};
