import type { CommandRegistrar } from './context.js';
import { ExitCode } from './errors.js';
import { isSourceError } from '../matching/index.js';
import { readEdeployConfigDir } from '../profiles/edeploy-dir.js';
import type { ApplyOutcome } from '../profiles/writes.js';
import { printApplyOutcome } from './profile-apply.js';

export const registerEdeployImport: CommandRegistrar = (edeploy, ctx) => {
  edeploy
    .command('import')
    .description("import an eDeploy CONFIGDIR unchanged: state's profiles in order with their counts as quotas, each .specs as the spec, each .cmdb as a pool; all or nothing")
    .argument('<dir>', 'the eDeploy CONFIGDIR')
    .option('--pxe-cmdline <line>', "the kernel command line of eDeploy's PXE configuration: the arguments between its '|' marks become each profile's deploy.kernelArgs")
    .option('--dry-run', 'print the document that would be applied, change nothing')
    .option('--json', 'print JSON')
    .action(async (dir: string, o: { pxeCmdline?: string; dryRun?: boolean; json?: boolean }) => {
      let imported;
      try {
        imported = readEdeployConfigDir(dir, { pxeCmdline: o.pxeCmdline });
      } catch (e) {
        if (!isSourceError(e) && (e as { code?: unknown }).code !== 'validation') throw e;
        ctx.out.error(`plinth: ${(e as Error).message}`);
        throw new ExitCode(2);
      }
      for (const n of imported.notes) ctx.out.error(`note: ${n}`);
      if (o.dryRun) return ctx.out.json(imported.body);
      const r = await ctx.client().request<ApplyOutcome>('POST', '/api/v1/profiles/apply', imported.body);
      if (o.json) ctx.out.json(r);
      else printApplyOutcome(ctx.out, r);
    });
};
