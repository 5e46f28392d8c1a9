import { Command, CommanderError } from 'commander';
import { streamOutput, type Output } from './output.js';
import { UsageError, ExitCode } from './errors.js';
import type { CliContext, CommandGroup, CommandRegistrar } from './context.js';
import { PlinthError } from '../core/errors.js';
import type { PlinthClient } from '../api/client.js';
import { registerServe } from './serve.js';
import { registerEvents } from './events.js';
import { registerManager } from './manager.js';
import { registerLab } from './lab.js';
import { MATCHING_GROUPS } from './matching-groups.js';

/** Command groups: `plinth <noun> <verb>`, one file per verb. */
const GROUPS: CommandGroup[] = [
  {
    noun: 'machine',
    description: 'machines in the inventory',
    verbs: () =>
      Promise.all([
        import('./machine-list.js').then((m) => m.registerMachineList),
        import('./machine-show.js').then((m) => m.registerMachineShow),
        import('./machine-create.js').then((m) => m.registerMachineCreate),
        import('./machine-import.js').then((m) => m.registerMachineImport),
        import('./machine-update.js').then((m) => m.registerMachineUpdate),
        import('./machine-delete.js').then((m) => m.registerMachineDelete),
        import('./machine-action.js').then((m) => m.registerMachineAction),
        import('./machine-events.js').then((m) => m.registerMachineEvents),
        import('./machine-trace.js').then((m) => m.registerMachineTrace),
        import('./machine-power.js').then((m) => m.registerMachinePower),
        import('./machine-deploy.js').then((m) => m.registerMachineDeploy),
        import('./machine-release.js').then((m) => m.registerMachineRelease),
        import('./machine-allocate.js').then((m) => m.registerMachineAllocate),
        import('./script.js').then((m) => m.registerMachineScript),
        import('./health.js').then((m) => m.registerMachineHealth),
        import('./machine-hold.js').then((m) => m.registerMachineHold),
      ]),
  },
  { noun: 'netbox', description: 'NetBox as the source of truth for machines', verbs: () => Promise.all([import('./netbox-sync.js').then((m) => m.registerNetboxSync)]) },
  { noun: 'webhook', description: 'webhooks: events POSTed to other systems (admin)', verbs: () => Promise.all([import('./webhook.js').then((m) => m.registerWebhookCommands)]) },
  {
    noun: 'token',
    description: 'API tokens',
    verbs: () =>
      Promise.all([
        import('./token-create.js').then((m) => m.registerTokenCreate),
        import('./token-list.js').then((m) => m.registerTokenList),
        import('./token-revoke.js').then((m) => m.registerTokenRevoke),
      ]),
  },
  {
    noun: 'installer',
    description: 'the live installer machines network-boot into',
    verbs: () =>
      Promise.all([
        import('./installer-build.js').then((m) => m.registerInstallerBuild),
        import('./installer-upload.js').then((m) => m.registerInstallerUpload),
      ]),
  },
  { noun: 'image', description: 'disk images and installer files', verbs: () => Promise.all([import('./image.js').then((m) => m.registerImageCommands)]) },
  { noun: 'script', description: "operators' scripts run on machines in the installer (discovery, commissioning, tests)", verbs: () => Promise.all([import('./script.js').then((m) => m.registerScriptCommands)]) },
  { noun: 'health', description: "health checks: benchmark figures of machines, and outliers among a profile's machines", verbs: () => Promise.all([import('./health.js').then((m) => m.registerHealthCommands)]) },
  { noun: 'tree', description: "eDeploy's trees: a role's files at a version, and the steps between versions", verbs: () => Promise.all([import('./tree.js').then((m) => m.registerTreeCommands)]) },
  { noun: 'template', description: 'templates and snippets for deploys', verbs: () => Promise.all([import('./template.js').then((m) => m.registerTemplateCommands)]) },
  {
    noun: 'appliance',
    description: 'BMCs, hypervisors and labs that control machines',
    verbs: () =>
      Promise.all([
        import('./appliance-register.js').then((m) => m.registerApplianceRegister),
        import('./appliance-update.js').then((m) => m.registerApplianceUpdate),
        import('./appliance-list.js').then((m) => m.registerApplianceList),
        import('./appliance-show.js').then((m) => m.registerApplianceShow),
        import('./appliance-check.js').then((m) => m.registerApplianceCheck),
        import('./appliance-events.js').then((m) => m.registerApplianceEvents),
        import('./appliance-move.js').then((m) => m.registerApplianceMove),
        import('./appliance-delete.js').then((m) => m.registerApplianceDelete),
        import('./appliance-enlist.js').then((m) => m.registerApplianceEnlist),
      ]),
  },
  ...MATCHING_GROUPS,
];

/** Groups registered by later components (installer, images, providers…). */
export const extraGroups: CommandGroup[] = [];
export const extraCommands: CommandRegistrar[] = [];

export interface RunCliOptions {
  env?: NodeJS.ProcessEnv;
  out?: Output;
}

/**
 * Runs the CLI and returns its exit code: 0 ok, 1 error, 2 usage. Never exits the process
 * (main.ts does), so tests run commands in-process.
 */
export async function runCli(argv: string[], opts: RunCliOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  const out = opts.out ?? streamOutput();
  const program = new Command('plinth');
  let client: PlinthClient | null = null;
  /** The HTTP client and its configuration, loaded before the first action runs (not for help). */
  let connect: typeof import('./connect.js') | null = null;
  const ctx: CliContext = {
    env,
    out,
    client() {
      if (!connect) throw new Error('the client is only available inside an action');
      client ??= connect.clientFor(connect.resolveConnection(program.opts<{ url?: string; token?: string; caBundle?: string }>(), env));
      return client;
    },
  };
  program
    .description('Plinth: provisioning for bare-metal servers and virtual machines')
    .option('--url <url>', 'controller URL (PLINTH_URL, default http://127.0.0.1:7708)')
    .option('--token <token>', 'API token (PLINTH_TOKEN, default ./var/admin.token)')
    .option('--ca-bundle <file>', "PEM CA certificates to trust for an HTTPS controller, besides the system's (PLINTH_CA_BUNDLE)")
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.line(s.trimEnd()), writeErr: (s) => out.error(s.trimEnd()) })
    .hook('preAction', async () => {
      connect ??= await import('./connect.js');
    });

  registerServe(program, ctx);
  registerManager(program, ctx);
  registerLab(program, ctx);
  registerEvents(program, ctx);
  for (const r of extraCommands) r(program, ctx);
  // Only the groups the command line names load their verbs (and all those import): help and
  // one command stay quick to start. Every noun is still listed, and found by `plinth help <noun>`.
  const words = new Set(argv);
  for (const g of [...GROUPS, ...extraGroups]) {
    const noun = program.command(g.noun).description(g.description);
    if (words.has(g.noun)) for (const v of await g.verbs()) v(noun, ctx);
  }
  // Usage errors anywhere in the tree surface as CommanderError (exit 2), not process.exit.
  const overrideAll = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(overrideAll);
  };
  overrideAll(program);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      // commander already printed the message
      return 2;
    }
    if (e instanceof ExitCode) return e.code;
    if (e instanceof UsageError) {
      out.error(`plinth: ${e.message}`);
      return 2;
    }
    if (e instanceof PlinthError) {
      out.error(`plinth: ${e.message}`);
      return 1;
    }
    out.error(`plinth: ${(e as Error).message ?? String(e)}`);
    return 1;
  }
}
