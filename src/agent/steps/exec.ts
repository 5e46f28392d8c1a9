import { execFile } from 'node:child_process';

/**
 * How the steps run tools. Unlike the inspection's runner (which degrades and never
 * rejects), a step cannot carry on without its tool: a failure rejects with a ToolError
 * that names the command and what it printed on stderr.
 */
export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface ExecOptions {
  /** 0: no limit (a secure erase of a large drive takes hours). Default 120 s. */
  timeoutMs?: number;
  /** Exit codes that are answers rather than failures (growpart's 1 = nothing to grow). */
  okExitCodes?: readonly number[];
}

export type Exec = (command: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

export class ToolError extends Error {
  constructor(
    readonly command: string,
    readonly reason: 'missing' | 'failed' | 'timeout',
    readonly exitCode: number | null,
    readonly stderr: string,
    message: string,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function nodeExec(): Exec {
  return (command, args, options = {}) =>
    new Promise<ExecResult>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? 120_000;
      const okExitCodes = options.okExitCodes ?? [0];
      execFile(
        command,
        [...args],
        {
          timeout: timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: 32 * 1024 * 1024,
          // NOTE: LC_ALL=C keeps hdparm, sgdisk and growpart in English; their output is parsed.
          env: { PATH, LC_ALL: 'C' },
          encoding: 'utf8',
        },
        (error, stdout, stderr) => {
          const err = error as (Error & { code?: string | number; killed?: boolean; signal?: string | null }) | null;
          const exitCode = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
          if (exitCode !== null && okExitCodes.includes(exitCode)) {
            resolve({ stdout, stderr, exitCode });
            return;
          }
          const line = [command, ...args].join(' ');
          const said = firstLines(stderr) || firstLines(stdout);
          if (err?.code === 'ENOENT') reject(new ToolError(command, 'missing', null, stderr, `${command} is not installed`));
          else if (err?.killed && exitCode === null) reject(new ToolError(command, 'timeout', null, stderr, `${line}: did not finish within ${timeoutMs / 1000} s`));
          else {
            const how = exitCode !== null ? `exited with status ${exitCode}` : `was killed by ${err?.signal ?? 'a signal'}`;
            reject(new ToolError(command, 'failed', exitCode, stderr, `${line}: ${how}${said ? `: ${said}` : ''}`));
          }
        },
      );
    });
}

/** The first few non-empty lines, joined: enough to say why a tool failed in one message. */
function firstLines(text: string, max = 3): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, max)
    .join(' / ');
}
