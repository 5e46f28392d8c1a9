import type { CommandRegistrar } from './context.js';
import { collect, oneOf, parsePairs } from './context.js';
import { readSshKeyFiles } from './ssh-key-files.js';
import type { MachineView, RunView } from '../api/client.js';
import { DEPLOY_METHODS, OS_SETTING_KEYS, OsSettingsSchema, SIZE_HINTS } from '../protocol/deploy.js';

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
    .description('install an OS on an available machine (or redeploy a deployed one)')
    .argument('<machine>', 'name or id')
    .option('--image <image>', 'image-store name (default: the profile\'s, else debian-12)')
    .option('--image-url <url>', 'fetch the image from this mirror instead of the controller')
    .option('--method <method>', 'image (default), preseed, kickstart or autoinstall')
    .option('--ssh-key <file>', 'a public key file to authorise (repeatable)', collect, [])
    .option('--root-device <key=value>', 'root device hint: name, sizeGiB, serial, wwn, model, vendor… (repeatable)', collect, [])
    .option('--kernel-args <args>', "added to the installed system's kernel command line (instead of the profile's)")
    .option('--template <name>', "a template of the method's kind rendered in place of its main one (e.g. an override named rhel9.cfg)")
    .option('--reuse-run <run>', 'deploy again with the artifacts of this run, byte for byte')
    .option('--reason <text>', 'why (recorded in the history)')
    .option('--json', 'print JSON');
  for (const f of OS_FLAGS) {
    if (f.list) command.option(`${f.flag} <value>`, f.description, collect, []);
    else command.option(`${f.flag} <value>`, f.description);
  }
  command.action(
    async (
      key: string,
      o: { image?: string; imageUrl?: string; method?: string; sshKey: string[]; rootDevice: string[]; kernelArgs?: string; template?: string; reuseRun?: string; reason?: string; json?: boolean } & Record<string, unknown>,
    ) => {
      const method = o.method ? oneOf(o.method, '--method', DEPLOY_METHODS) : undefined;
      const sshKeys = readSshKeyFiles(o.sshKey);
      const os = Object.fromEntries(OS_FLAGS.flatMap((f) => (f.list ? ((o[f.option] as string[]).length ? [[f.key, o[f.option]]] : []) : o[f.option] !== undefined ? [[f.key, o[f.option]]] : [])));
      const hints = Object.fromEntries(Object.entries(parsePairs(o.rootDevice, '--root-device')).map(([k, v]) => [k, HINT_NUMBERS.has(k) ? Number(v) : v]));
      const client = ctx.client();
      const current = await client.getMachine(key);
      const action = current.state === 'deployed' ? 'redeploy' : current.state === 'deploy-failed' ? 'retry' : 'deploy';
      const r = await client.action(key, action, {
        ...(o.image ? { image: o.image } : {}),
        ...(o.imageUrl ? { imageUrl: o.imageUrl } : {}),
        ...(method ? { method } : {}),
        ...(sshKeys.length ? { sshKeys } : {}),
        ...(Object.keys(hints).length ? { rootDeviceHints: hints } : {}),
        ...(Object.keys(os).length ? { os } : {}),
        ...(o.kernelArgs !== undefined ? { kernelArgs: o.kernelArgs } : {}),
        ...(o.template ? { template: o.template } : {}),
        ...(o.reuseRun ? { reuseRun: o.reuseRun } : {}),
        ...(o.reason ? { reason: o.reason } : {}),
      });
      const m: MachineView = r.machine;
      const run: RunView | null = r.run;
      if (o.json) return ctx.out.json(r);
      if (m.state === 'deploy-failed') throw new Error(`deploy of ${m.name} failed: [${m.lastError?.code}] ${m.lastError?.message}`);
      ctx.out.line(`${m.name}: ${m.state}${run ? ` (run ${run.id})` : ''}`);
    },
  );
};
