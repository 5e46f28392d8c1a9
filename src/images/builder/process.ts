/**
 * Runs the host and chroot tools of an image build. Each child gets its own process group so
 * that aborting a build also ends what the tool started (debootstrap and dpkg fork a lot),
 * and a minimal environment so that the host's locale or shell settings never leak into the
 * image. Output is streamed line by line to the build log; the last lines are kept for the
 * error message when the tool fails.
 */
import { spawn } from 'node:child_process';
import { PlinthError } from '../../core/errors.js';

/** Prefix of a line a tool printed, as opposed to a line the builder wrote about its own steps. */
export const TOOL_OUTPUT_PREFIX = '  | ';

const OUTPUT_TAIL_LINES = 40;
const MAX_CAPTURE_BYTES = 64 * 1024 * 1024;
const KILL_GRACE_MS = 5000;

export interface RunOptions {
  log: (line: string) => void;
  signal?: AbortSignal;
  /** Added to the minimal environment. */
  env?: Record<string, string>;
  /** Written to standard input, which is then closed. */
  input?: string;
  /** Keep standard output and return it instead of logging it. */
  capture?: boolean;
  /** Exit codes that count as success (default: 0 only). */
  okExitCodes?: number[];
}

export interface RunResult {
  exitCode: number;
  stdout: string;
}

/** The environment every tool starts from: nothing of the caller's except proxy settings. */
export function baseEnvironment(): Record<string, string> {
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    HOME: '/root',
  };
  for (const key of ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return env;
}

export function abortError(signal: AbortSignal): Error {
  const reason = signal.reason instanceof Error ? `: ${signal.reason.message}` : '';
  const error = new PlinthError('unavailable', `image build aborted${reason}`, { cause: signal.reason });
  error.name = 'AbortError';
  return error;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

const quote = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);
export const commandLine = (command: string, args: string[]): string => [command, ...args].map(quote).join(' ');

/** Runs a tool to completion; rejects when it exits with a code not listed as success. */
export function runProcess(command: string, args: string[], options: RunOptions): Promise<RunResult> {
  const { log, signal } = options;
  throwIfAborted(signal);
  const shown = commandLine(command, args);
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...baseEnvironment(), ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      // NOTE: a process group of its own, so that abort can signal the whole tree with kill(-pid).
      detached: true,
    });
    const tail: string[] = [];
    const remember = (line: string): void => {
      tail.push(line);
      if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
    };
    const lineSplitter = (onLine: (line: string) => void) => {
      let pending = '';
      return {
        push(chunk: string) {
          pending += chunk;
          const parts = pending.split(/\r?\n|\r/);
          pending = parts.pop() ?? '';
          for (const part of parts) if (part.trim() !== '') onLine(part);
        },
        end() {
          if (pending.trim() !== '') onLine(pending);
          pending = '';
        },
      };
    };
    const toLog = (line: string): void => {
      remember(line);
      log(TOOL_OUTPUT_PREFIX + line);
    };
    let captured = '';
    let overflowed = false;
    const stdoutLines = lineSplitter(toLog);
    const stderrLines = lineSplitter(toLog);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (options.capture) {
        if (captured.length + chunk.length > MAX_CAPTURE_BYTES) {
          overflowed = true;
          signalGroup(child.pid, 'SIGKILL');
        } else captured += chunk;
      } else stdoutLines.push(chunk);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderrLines.push(chunk));

    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      signalGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (error) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new PlinthError('internal', `cannot run ${command}: ${error.message}`, { cause: error, details: { command: shown } }));
    });
    child.on('close', (code, killedBy) => {
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
      stdoutLines.end();
      stderrLines.end();
      if (signal?.aborted) return reject(abortError(signal));
      if (overflowed) return reject(new PlinthError('internal', `${shown}: output larger than ${MAX_CAPTURE_BYTES} bytes`));
      const exitCode = code ?? 128;
      if ((options.okExitCodes ?? [0]).includes(exitCode)) return resolve({ exitCode, stdout: captured });
      const how = killedBy ? `killed by ${killedBy}` : `exit code ${exitCode}`;
      const last = tail.at(-1);
      reject(
        new PlinthError('internal', `${shown} failed (${how})${last ? `: ${last.trim()}` : ''}`, {
          details: { command: shown, exitCode, output: [...tail] },
        }),
      );
    });
    child.stdin.on('error', () => {
      // The tool may exit before reading its input; its exit code tells what happened.
    });
    child.stdin.end(options.input ?? '');
  });
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** The output lines a failed tool left in its error, for callers that print them. */
export function outputOf(error: unknown): string[] {
  if (error instanceof PlinthError && Array.isArray(error.details?.output)) return error.details.output as string[];
  return [];
}
