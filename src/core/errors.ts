/**
 * One error hierarchy for the whole project. Every error a caller may act on carries a
 * stable `code` (machine-readable, documented), the HTTP status it maps to, `details` for
 * the client and an optional `cause`. The HTTP mapping happens in exactly one place
 * (api/errors.ts); the CLI prints `message`.
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
  | 'unsupported'
  | 'unavailable'
  | 'timeout'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  validation: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  duplicate: 409,
  invalid_transition: 409,
  protected: 409,
  maintenance: 409,
  payload_too_large: 413,
  unsupported: 422,
  unavailable: 503,
  timeout: 504,
  internal: 500,
};

export class PlinthError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: { details?: Record<string, unknown>; cause?: unknown; status?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PlinthError';
    this.code = code;
    this.status = options.status ?? STATUS[code];
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
