/**
 * How the image build runs host and chroot programs (through the build toolchain's one
 * runner): in a minimal environment, so that the host's locale or shell settings never leak
 * into the image, with every line a program prints marked as tool output in the build log.
 */
import { cleanEnvironment } from '../../build/environment.js';
import { runTool, type ToolResult } from '../../build/process.js';

/** Prefix of a line a tool printed, as opposed to a line the builder wrote about its own steps. */
export const TOOL_OUTPUT_PREFIX = '  | ';

export const IMAGE_BUILD = 'image build';

export interface RunOptions {
  log: (line: string) => void;
  signal?: AbortSignal | undefined;
  /** Added to the minimal environment. */
  env?: Record<string, string>;
  /** Written to standard input, which is then closed. */
  input?: string;
  /** Keep standard output and return it instead of logging it. */
  capture?: boolean;
  /** Exit codes that count as success (default: 0 only). */
  okExitCodes?: number[];
}

/** Runs a tool to completion; rejects when it exits with a code not listed as success. */
export function runProcess(command: string, args: string[], options: RunOptions): Promise<ToolResult> {
  const { log, env, capture, ...rest } = options;
  return runTool(command, args, {
    ...rest,
    job: IMAGE_BUILD,
    env: cleanEnvironment(env),
    stdout: capture ? 'capture' : 'lines',
    onLine: (line) => log(TOOL_OUTPUT_PREFIX + line),
  });
}
