import { spawn } from 'node:child_process';
import { PlinthError } from '../core/errors.js';

/**
 * Runs the host tools the installer build needs (debootstrap, cpio, compressors, depmod).
 * Output goes to the build log line by line; the tail is kept so a failure can say why.
 */
export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Receives every output line (stdout and stderr); return nothing. */
  onLine?: (line: string) => void;
  /** Lines kept for the error message when the command fails. */
  tailLines?: number;
}

export interface RunResult {
  stdout: string;
  tail: string[];
}

/** sbin directories are searched too: debootstrap, depmod and chroot live there. */
export const TOOL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function toolEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const path = [process.env.PATH, TOOL_PATH].filter(Boolean).join(':');
  return { ...process.env, PATH: path, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive', ...extra };
}

/**
 * Runs `command` to completion and resolves with its stdout (also collected when onLine is
 * given). Rejects with the exit status and the last lines of output. On abort the whole
 * process group is terminated, because debootstrap and shell pipelines fork children that
 * a plain kill would leave running.
 */
export function runCommand(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const tailLimit = options.tailLines ?? 40;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(abortError(command, options.signal));
      return;
    }
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? toolEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const tail: string[] = [];
    const stdoutChunks: Buffer[] = [];
    const pushLine = (line: string) => {
      tail.push(line);
      if (tail.length > tailLimit) tail.shift();
      options.onLine?.(line);
    };
    const splitter = () => {
      let pending = '';
      return {
        push(text: string) {
          pending += text;
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          for (const l of lines) pushLine(l.replace(/\r$/, ''));
        },
        flush() {
          if (pending) pushLine(pending);
          pending = '';
        },
      };
    };
    const out = splitter();
    const err = splitter();
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutChunks.push(chunk);
      out.push(chunk.toString('utf8'));
    });
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk.toString('utf8')));

    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    };
    const onAbort = () => killGroup();
    options.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (e) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(new PlinthError('internal', `${command}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signalName) => {
      options.signal?.removeEventListener('abort', onAbort);
      out.flush();
      err.flush();
      if (options.signal?.aborted) {
        reject(abortError(command, options.signal));
        return;
      }
      if (code === 0) {
        resolve({ stdout: Buffer.concat(stdoutChunks).toString('utf8'), tail });
        return;
      }
      const status = code === null ? `signal ${signalName}` : `status ${code}`;
      const shown = tail.filter((l) => l.trim()).slice(-15).join('\n  ');
      reject(
        new PlinthError('internal', `${command} ${args[0] ?? ''} failed with ${status}${shown ? `:\n  ${shown}` : ''}`, {
          details: { command, args, code, signal: signalName },
        }),
      );
    });
  });
}

function abortError(command: string, signal: AbortSignal): PlinthError {
  return new PlinthError('internal', `installer build aborted while running ${command}`, { cause: signal.reason });
}
