import { runCli } from '../../src/cli/program.js';
import type { Output } from '../../src/cli/output.js';

/**
 * Runs `plinth ARGS` in-process with `env`; returns the exit code and what it printed.
 * Tables are captured as space-separated cells (header only when there are rows), so that
 * tests can compare lines without the real output's column padding.
 */
export function inProcessCli(env: NodeJS.ProcessEnv) {
  return async (...argv: string[]) => {
    let stdout = '';
    let stderr = '';
    const out: Output = {
      json: (v) => (stdout += JSON.stringify(v, null, 2) + '\n'),
      table: (rows, cols) => (stdout += (rows.length ? cols.join(' ') + '\n' : '') + rows.map((r) => cols.map((c) => String(r[c] ?? '-')).join(' ')).join('\n') + '\n'),
      line: (s) => (stdout += s + '\n'),
      error: (s) => (stderr += s + '\n'),
    };
    const code = await runCli(argv, { env, out });
    return { code, stdout, stderr };
  };
}
