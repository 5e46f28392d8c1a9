import type { CliContext } from './context.js';
import { ExitCode } from './errors.js';
import type { CommandResult } from '../matching/index.js';

/**
 * Prints what a local matching command produced and ends with its exit status: scripts rely
 * on stdout being exactly the command's JSON and on 0 / 1 / 2 meaning what they document.
 */
export function finishLocal(ctx: CliContext, r: CommandResult): void {
  if (r.stdout) ctx.out.line(r.stdout.replace(/\n$/, ''));
  if (r.stderr) ctx.out.error(r.stderr.replace(/\n$/, ''));
  if (r.exitCode !== 0) throw new ExitCode(r.exitCode);
}
