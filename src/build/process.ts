/**
 * The one way the builders (installer, images) run host programs. Every program gets a
 * process group of its own, so that an abort or a timeout also ends what it started
 * (debootstrap, dpkg and shell pipelines fork a lot and a plain kill would leave those
 * running, holding mounts and pipes). Output is split into lines for the build log; the last
 * lines are kept so that a failure says why in its message.
 */
import { spawn, type StdioOptions } from 'node:child_process';
import type { Readable } from 'node:stream';
import { PlinthError } from '../core/errors.js';
import { cleanEnvironment } from './environment.js';

const DEFAULT_TAIL_LINES = 40;
/** Lines of the tail quoted in the error message itself (the whole tail is in `details.output`). */
const MESSAGE_TAIL_LINES = 10;
const MAX_CAPTURE_BYTES = 64 * 1024 * 1024;
/** Time a group gets between SIGTERM and SIGKILL: dpkg and debootstrap clean up on SIGTERM. */
const KILL_GRACE_MS = 5000;

export interface ToolOptions {
  /** What the program runs for, e.g. 'image build': abort messages name it. */
  job?: string;
  cwd?: string;
  /** The program's whole environment; default cleanEnvironment(). */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal | undefined;
  /** Ends the program (and its group) when it runs longer; the run rejects with code 'timeout'. */
  timeoutMs?: number;
  /** Standard input: a text, or a stream piped in; closed at its end. Default: none (/dev/null). */
  input?: string | Readable;
  /**
   * Standard output: 'lines' (default) passes each line to onLine; 'capture' keeps it and
   * returns it; 'pipe' leaves the stream to the caller (RunningTool.stdout); a file
   * descriptor writes it there.
   */
  stdout?: 'lines' | 'capture' | 'pipe' | number;
  /** Receives every non-blank output line (stdout unless captured or redirected, and stderr). */
  onLine?: (line: string) => void;
  /** Output lines kept for the error (default 40). */
  tailLines?: number;
  /** Exit codes that count as success (default: 0 only). */
  okExitCodes?: number[];
}

export interface ToolResult {
  exitCode: number;
  /** Standard output when captured, '' otherwise. */
  stdout: string;
  /** The last output lines (stdout and stderr as they came). */
  tail: string[];
}

export interface RunningTool {
  pid: number | undefined;
  /** Standard output when ToolOptions.stdout is 'pipe'. */
  stdout: Readable | null;
  result: Promise<ToolResult>;
}

const quote = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);
/** A command line as a shell would read it, for messages. */
export const commandLine = (command: string, args: string[]): string => [command, ...args].map(quote).join(' ');

export function abortError(signal: AbortSignal, job = 'build', command?: string): PlinthError {
  const reason = signal.reason instanceof Error ? `: ${signal.reason.message}` : '';
  const during = command ? ` (while running ${command})` : '';
  const error = new PlinthError('unavailable', `${job} aborted${reason}${during}`, { cause: signal.reason });
  error.name = 'AbortError';
  return error;
}

export function throwIfAborted(signal: AbortSignal | undefined, job?: string): void {
  if (signal?.aborted) throw abortError(signal, job);
}

/** The output lines a failed program left in its error, for callers that print them. */
export function outputOf(error: unknown): string[] {
  if (error instanceof PlinthError && Array.isArray(error.details?.output)) return error.details.output as string[];
  return [];
}

/** Splits a stream's text into lines (\n, \r\n or a bare \r), dropping blank ones. */
function lineSplitter(onLine: (line: string) => void) {
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
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Starts a program; `result` settles when it and everything holding its output have exited. */
export function startTool(command: string, args: string[], options: ToolOptions = {}): RunningTool {
  const shown = commandLine(command, args);
  const stdoutMode = options.stdout ?? 'lines';
  const tailLimit = options.tailLines ?? DEFAULT_TAIL_LINES;
  const { signal, job } = options;
  if (signal?.aborted) return { pid: undefined, stdout: null, result: Promise.reject(abortError(signal, job, command)) };

  const stdio: StdioOptions = [
    options.input === undefined ? 'ignore' : 'pipe',
    typeof stdoutMode === 'number' ? stdoutMode : 'pipe',
    'pipe',
  ];
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? cleanEnvironment(),
    stdio,
    // NOTE: a process group of its own, so that abort and timeout can signal the whole tree with kill(-pid).
    detached: true,
  });

  const tail: string[] = [];
  const stderrTail: string[] = [];
  const remember = (list: string[], line: string): void => {
    list.push(line);
    if (list.length > tailLimit) list.shift();
  };
  const toLog = (line: string): void => {
    remember(tail, line);
    options.onLine?.(line);
  };
  const stdoutLines = lineSplitter(toLog);
  const stderrLines = lineSplitter((line) => {
    remember(stderrTail, line);
    toLog(line);
  });
  let captured = '';
  let overflowed = false;
  if (stdoutMode === 'lines') child.stdout!.setEncoding('utf8').on('data', (chunk: string) => stdoutLines.push(chunk));
  if (stdoutMode === 'capture') {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      if (captured.length + chunk.length <= MAX_CAPTURE_BYTES) captured += chunk;
      else {
        overflowed = true;
        signalGroup(child.pid, 'SIGKILL');
      }
    });
  }
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderrLines.push(chunk));
  if (child.stdin) {
    child.stdin.on('error', () => {
      // The program may exit before reading its input; its exit code tells what happened.
    });
    if (typeof options.input === 'string') child.stdin.end(options.input);
    else options.input?.pipe(child.stdin);
  }

  let stoppedBy: 'abort' | 'timeout' | null = null;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = (why: 'abort' | 'timeout'): void => {
    if (stoppedBy) return;
    stoppedBy = why;
    signalGroup(child.pid, 'SIGTERM');
    killTimer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
  };
  const onAbort = (): void => stop('abort');
  signal?.addEventListener('abort', onAbort, { once: true });
  const timeout = options.timeoutMs === undefined ? undefined : setTimeout(() => stop('timeout'), options.timeoutMs);
  const settle = (): void => {
    signal?.removeEventListener('abort', onAbort);
    clearTimeout(timeout);
    clearTimeout(killTimer);
  };

  const result = new Promise<ToolResult>((resolve, reject) => {
    child.on('error', (error) => {
      settle();
      reject(new PlinthError('internal', `cannot run ${command}: ${error.message}`, { cause: error, details: { command: shown } }));
    });
    child.on('close', (code, killedBy) => {
      settle();
      stdoutLines.end();
      stderrLines.end();
      if (stoppedBy === 'abort' && signal) return reject(abortError(signal, job, command));
      if (stoppedBy === 'timeout') {
        return reject(
          new PlinthError('timeout', `${shown} did not finish within ${options.timeoutMs} ms and was stopped`, {
            details: { command: shown, output: [...tail] },
          }),
        );
      }
      if (overflowed) return reject(new PlinthError('internal', `${shown}: output larger than ${MAX_CAPTURE_BYTES} bytes`));
      const exitCode = code ?? 128;
      if ((options.okExitCodes ?? [0]).includes(exitCode)) return resolve({ exitCode, stdout: captured, tail });
      reject(failure(shown, killedBy ? `killed by ${killedBy}` : `exit code ${exitCode}`, stderrTail.length > 0 ? stderrTail : tail, {
        command: shown,
        exitCode,
        output: [...tail],
      }));
    });
  });
  return { pid: child.pid, stdout: stdoutMode === 'pipe' ? child.stdout : null, result };
}

/** A failure names the command, how it ended and its last stderr lines (its output when stderr was silent). */
function failure(shown: string, how: string, lines: string[], details: Record<string, unknown>): PlinthError {
  const quoted = lines.slice(-MESSAGE_TAIL_LINES).map((l) => l.trim());
  const text = quoted.length === 0 ? '' : quoted.length === 1 ? `: ${quoted[0]}` : `:\n  ${quoted.join('\n  ')}`;
  return new PlinthError('internal', `${shown} failed (${how})${text}`, { details });
}

/** Runs a program to completion; rejects when it exits with a code not listed as success. */
export function runTool(command: string, args: string[], options: ToolOptions = {}): Promise<ToolResult> {
  return startTool(command, args, options).result;
}
