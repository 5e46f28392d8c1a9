import { execFile } from 'node:child_process';

/**
 * How the inspection runs tools. A runner never rejects: a tool that is missing, fails or
 * hangs is an answer the collector degrades on (fewer facts), not an error.
 */
export type CommandResult =
  | { ok: true; stdout: string }
  | {
      ok: false;
      /** missing: not installed; failed: non-zero exit or killed; timeout: ran out of time. */
      reason: 'missing' | 'failed' | 'timeout';
      exitCode: number | null;
      stdout: string;
      stderr: string;
      message: string;
    };

/** Runs `command` with `args` (no shell involved) and reports how it ended. Never rejects. */
export type CommandRunner = (command: string, args: readonly string[]) => Promise<CommandResult>;

export interface NodeCommandRunnerOptions {
  /** Per command. A BMC that does not answer keeps ipmitool busy for minutes. Default 30 s. */
  timeoutMs?: number;
  /** Default: the usual system directories, sbin included (dmidecode and ip live there). */
  path?: string;
  /** Default 32 MiB; dmidecode on a large server prints a few hundred kB. */
  maxOutputBytes?: number;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The real runner, over node:child_process. */
export function nodeCommandRunner(options: NodeCommandRunnerOptions = {}): CommandRunner {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return (command, args) =>
    new Promise<CommandResult>((resolve) => {
      execFile(
        command,
        [...args],
        {
          timeout: timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: options.maxOutputBytes ?? 32 * 1024 * 1024,
          // NOTE: LC_ALL=C keeps lscpu, ethtool and ipmitool in English with '.' decimals; parsers rely on it.
          env: { PATH: options.path ?? DEFAULT_PATH, LC_ALL: 'C' },
          encoding: 'utf8',
        },
        (error, stdout, stderr) => {
          if (!error) {
            resolve({ ok: true, stdout });
            return;
          }
          const err = error as Error & { killed?: boolean; code?: string | number; signal?: string | null };
          const exitCode = typeof err.code === 'number' ? err.code : null;
          const reason = err.code === 'ENOENT' ? 'missing' : err.killed && exitCode === null ? 'timeout' : 'failed';
          const message =
            reason === 'missing'
              ? `${command} is not installed`
              : reason === 'timeout'
                ? `${command} did not finish within ${timeoutMs} ms`
                : exitCode !== null
                  ? `${command} exited with status ${exitCode}`
                  : `${command} failed: ${err.signal ? `killed by ${err.signal}` : err.message}`;
          resolve({ ok: false, reason, exitCode, stdout: stdout ?? '', stderr: stderr ?? '', message });
        },
      );
    });
}
