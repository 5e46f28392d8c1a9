import { Command, CommanderError } from 'commander';
import { resolveConnection, clientFor } from './connect.js';
import { streamOutput, type Output } from './output.js';
import { UsageError, ExitCode } from './errors.js';
import type { CliContext, CommandRegistrar } from './context.js';
import { PlinthError } from '../core/errors.js';
import type { PlinthClient } from '../api/client.js';
import { registerServe } from './serve.js';
import { registerEvents } from './events.js';
import { registerWebhookCommands } from './webhook.js';
import { registerMachineList } from './machine-list.js';
import { registerMachineShow } from './machine-show.js';
import { registerMachineCreate } from './machine-create.js';
import { registerMachineImport } from './machine-import.js';
import { registerNetboxSync } from './netbox-sync.js';
import { registerMachineUpdate } from './machine-update.js';
import { registerMachineDelete } from './machine-delete.js';
import { registerMachineAction } from './machine-action.js';
import { registerMachineEvents } from './machine-events.js';
import { registerMachineTrace } from './machine-trace.js';
import { registerMachinePower } from './machine-power.js';
import { registerApplianceRegister } from './appliance-register.js';
import { registerApplianceList } from './appliance-list.js';
import { registerApplianceShow } from './appliance-show.js';
import { registerApplianceDelete } from './appliance-delete.js';
import { registerApplianceEnlist } from './appliance-enlist.js';
import { registerApplianceUpdate } from './appliance-update.js';
import { registerApplianceCheck } from './appliance-check.js';
import { registerApplianceMove } from './appliance-move.js';
import { registerApplianceEvents } from './appliance-events.js';
import { registerManager } from './manager.js';
import { registerLab } from './lab.js';
import { registerMachineDeploy } from './machine-deploy.js';
import { registerMachineRelease } from './machine-release.js';
import { registerMachineAllocate } from './machine-allocate.js';
import { registerInstallerUpload } from './installer-upload.js';
import { registerMachineHold } from './machine-hold.js';
import { registerImageCommands } from './image.js';
import { registerTreeCommands } from './tree.js';
import { registerMachineScript, registerScriptCommands } from './script.js';
import { registerTemplateCommands } from './template.js';
import { registerInstallerBuild } from './installer-build.js';
import { registerTokenCreate } from './token-create.js';
import { registerTokenList } from './token-list.js';
import { registerTokenRevoke } from './token-revoke.js';
import { MATCHING_GROUPS } from './matching-groups.js';

/** Command groups: `plinth <noun> <verb>`, one file per verb. */
const GROUPS: { noun: string; description: string; verbs: CommandRegistrar[] }[] = [
  {
    noun: 'machine',
    description: 'machines in the inventory',
    verbs: [
      registerMachineList,
      registerMachineShow,
      registerMachineCreate,
      registerMachineImport,
      registerMachineUpdate,
      registerMachineDelete,
      registerMachineAction,
      registerMachineEvents,
      registerMachineTrace,
      registerMachinePower,
      registerMachineDeploy,
      registerMachineRelease,
      registerMachineAllocate,
      registerMachineScript,
      registerMachineHold,
    ],
  },
  { noun: 'netbox', description: 'NetBox as the source of truth for machines', verbs: [registerNetboxSync] },
  { noun: 'webhook', description: 'webhooks: events POSTed to other systems (admin)', verbs: [registerWebhookCommands] },
  { noun: 'token', description: 'API tokens', verbs: [registerTokenCreate, registerTokenList, registerTokenRevoke] },
  { noun: 'installer', description: 'the live installer machines network-boot into', verbs: [registerInstallerBuild, registerInstallerUpload] },
  { noun: 'image', description: 'disk images and installer files', verbs: [registerImageCommands] },
  { noun: 'script', description: "operators' scripts run on machines in the installer (discovery, commissioning, tests)", verbs: [registerScriptCommands] },
  { noun: 'tree', description: "eDeploy's trees: a role's files at a version, and the steps between versions", verbs: [registerTreeCommands] },
  { noun: 'template', description: 'templates and snippets for deploys', verbs: [registerTemplateCommands] },
  {
    noun: 'appliance',
    description: 'BMCs, hypervisors and labs that control machines',
    verbs: [
      registerApplianceRegister,
      registerApplianceUpdate,
      registerApplianceList,
      registerApplianceShow,
      registerApplianceCheck,
      registerApplianceEvents,
      registerApplianceMove,
      registerApplianceDelete,
      registerApplianceEnlist,
    ],
  },
  ...MATCHING_GROUPS,
];

/** Groups registered by later components (installer, images, providers…). */
export const extraGroups: { noun: string; description: string; verbs: CommandRegistrar[] }[] = [];
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
  const ctx: CliContext = {
    env,
    out,
    client() {
      client ??= clientFor(resolveConnection(program.opts<{ url?: string; token?: string; caBundle?: string }>(), env));
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
    .configureOutput({ writeOut: (s) => out.line(s.trimEnd()), writeErr: (s) => out.error(s.trimEnd()) });

  registerServe(program, ctx);
  registerManager(program, ctx);
  registerLab(program, ctx);
  registerEvents(program, ctx);
  for (const r of extraCommands) r(program, ctx);
  for (const g of [...GROUPS, ...extraGroups]) {
    const noun = program.command(g.noun).description(g.description);
    for (const v of g.verbs) v(noun, ctx);
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
