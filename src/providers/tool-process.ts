/**
 * Runs the command-line tools some providers drive (`ipmitool`, `virsh`). Secrets reach a
 * tool only through its environment or a private file, never its argument list, because
 * argv is readable by every user of the machine (`ps`). The child is killed when the
 * call's deadline passes or the caller aborts, so a hung BMC never leaves a process behind.
 */
import { spawn } from 'node:child_process';
import { callDeadline, isTimeoutAbort } from './call-deadline.js';
import { redact } from './endpoint-http.js';
import { ProviderError, type ProviderContext } from './types.js';

export interface ToolRun {
  /** Provider name used in error messages. */
  provider: string;
  command: string;
  args: string[];
  /** Added to a minimal inherited environment (PATH, HOME, LANG=C so output is parseable). */
  env?: Record<string, string>;
  /** Written to the tool's standard input, which is then closed. */
  input?: string;
  ctx: Pick<ProviderContext, 'signal' | 'timeoutMs'>;
  /** Never shown in error messages. */
  secrets?: Array<string | undefined>;
}

export interface ToolResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const MAX_OUTPUT = 4 * 1024 * 1024;

/** Runs the tool to completion. Rejects only when it cannot start, times out or is aborted. */
export function runTool(run: ToolRun): Promise<ToolResult> {
  const deadline = callDeadline(run.ctx);
  return new Promise<ToolResult>((resolve, reject) => {
    const env: Record<string, string> = { LANG: 'C', LC_ALL: 'C' };
    for (const key of ['PATH', 'HOME', 'TMPDIR']) {
      const v = process.env[key];
      if (v !== undefined) env[key] = v;
    }
    Object.assign(env, run.env);
    const child = spawn(run.command, run.args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      deadline.release();
      deadline.signal.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = (): void => {
      child.kill('SIGKILL');
      const timedOut = isTimeoutAbort(deadline.signal);
      finish(() =>
        reject(
          new ProviderError(
            run.provider,
            'timeout',
            timedOut ? `${run.command} gave no answer within ${run.ctx.timeoutMs} ms` : `${run.command} cancelled`,
            deadline.signal.reason,
          ),
        ),
      );
    };
    if (deadline.signal.aborted) onAbort();
    else deadline.signal.addEventListener('abort', onAbort, { once: true });

    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr.on('data', (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      const missing = err.code === 'ENOENT';
      finish(() =>
        reject(
          new ProviderError(
            run.provider,
            missing ? 'unsupported' : 'unreachable',
            missing ? `${run.command} is not installed on this host` : `${run.command} could not start: ${err.message}`,
            err,
          ),
        ),
      );
    });
    child.on('close', (code, signal) => {
      const secrets = run.secrets ?? [];
      finish(() =>
        resolve({
          exitCode: code ?? (signal ? 128 : 1),
          stdout: redact(stdout, secrets),
          stderr: redact(stderr, secrets),
        }),
      );
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(run.input ?? '');
  });
}
