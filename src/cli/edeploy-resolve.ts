import type { CommandRegistrar } from './context.js';
import { UsageError } from './errors.js';
import { edeployResolveCommand } from '../matching/index.js';
import { finishLocal } from './local-command.js';

export const registerEdeployResolve: CommandRegistrar = (edeploy, ctx) => {
  edeploy
    .command('resolve')
    .description(
      "what eDeploy's server does for one machine, on an eDeploy CONFIGDIR: prints {\"profile\", \"vars\"} and updates state and the CMDB (exit 1 with eDeploy's message when nothing matches or the pool is exhausted); with --failure, gives the profile's quota back; needs no controller",
    )
    .requiredOption('--config-dir <dir>', 'the eDeploy CONFIGDIR (state, *.specs, *.cmdb)')
    .argument('[hw]', "the machine's hardware list (.hw or .json)")
    .option('--failure <profile>', 'a machine of this profile failed to install: give its quota back')
    .option('--lock-file <file>', 'lock file (default CONFIG_DIR/lock, as eDeploy without LOCKFILE)')
    .action(async (hw: string | undefined, o: { configDir: string; failure?: string; lockFile?: string }) => {
      if (hw === undefined && o.failure === undefined) throw new UsageError('give a hardware list, or --failure PROFILE');
      finishLocal(
        ctx,
        await edeployResolveCommand({
          configDir: o.configDir,
          ...(hw !== undefined ? { hwPath: hw } : {}),
          ...(o.failure !== undefined ? { failure: o.failure } : {}),
          ...(o.lockFile !== undefined ? { lockPath: o.lockFile } : {}),
        }),
      );
    });
};
