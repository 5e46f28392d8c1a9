/**
 * Why a deploy or wipe step failed, in a form the controller stores as the machine's
 * lastError: a stable code, a message naming what went wrong, and the step it happened in.
 *
 *   image    the image is wrong: checksum mismatch, not found (HTTP 404), size mismatch,
 *            changed on the controller while being written
 *   disk     a disk is wrong: no disk matches, too small, write or erase failed, in use
 *   network  the controller could not be reached for long enough to give up
 *   params   the run's parameters from the controller are malformed
 *   tool     a tool the installer should carry is missing
 *   script   an operator's script failed (exited non-zero, was killed, or timed out)
 *   tree     a tree deploy's tree could not be copied (rsync or the tarball failed)
 *   boot-loader  the installed system's boot loader, initramfs or kexec could not be set up
 *   agent    anything else: a fault of the agent itself
 */
export type StepErrorCode = 'image' | 'disk' | 'network' | 'params' | 'tool' | 'script' | 'tree' | 'boot-loader' | 'agent';

export class StepError extends Error {
  /** The step that was running; set by the step runner when it reports the failure. */
  step: string | undefined;

  constructor(
    readonly code: StepErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StepError';
  }
}

export const isStepError = (e: unknown): e is StepError => e instanceof StepError;

/** Any thrown value as a StepError: step errors stay as they are, anything else gets `fallback`. */
export function asStepError(e: unknown, fallback: StepErrorCode): StepError {
  if (e instanceof StepError) return e;
  return new StepError(fallback, e instanceof Error ? e.message : String(e), {}, { cause: e });
}
