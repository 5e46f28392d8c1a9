/**
 * One error hierarchy for the whole project. Every error a caller may act on carries a
 * stable `code` (machine-readable, documented), `details` for the client and an optional
 * `cause`. Codes say what went wrong, not how a transport reports it: the HTTP status of
 * each code is decided in exactly one place (api/errors.ts); the CLI prints `message`.
 */
export type ErrorCode =
  | 'bad_request'
  | 'validation'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'duplicate'
  | 'invalid_transition'
  | 'protected'
  | 'maintenance'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'unsupported'
  /** Bytes that do not match the checksum recorded or announced for them. */
  | 'checksum_mismatch'
  /** The appliance or provider behind the request failed or did not answer in time. */
  | 'provider_failed'
  | 'unavailable'
  | 'timeout'
  | 'internal';

export class PlinthError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PlinthError';
    this.code = code;
    this.details = options.details;
  }
}

export const isPlinthError = (e: unknown): e is PlinthError => e instanceof PlinthError;

export function notFound(what: string, key: string): PlinthError {
  return new PlinthError('not_found', `${what} '${key}' not found`, { details: { what, key } });
}

export function validation(field: string, message: string, extra: Record<string, unknown> = {}): PlinthError {
  return new PlinthError('validation', `${field}: ${message}`, { details: { field, ...extra } });
}

export function duplicate(field: string, value: string, existing?: string): PlinthError {
  const owner = existing ? ` (already used by ${existing})` : '';
  return new PlinthError('duplicate', `${field} '${value}' is already in use${owner}`, {
    details: { field, value, ...(existing ? { existing } : {}) },
  });
}

/** The message of anything thrown, for logs and lastError. */
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
