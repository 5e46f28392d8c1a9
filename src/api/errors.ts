import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { PlinthError, type ErrorCode } from '../core/errors.js';
import { nulRefused } from '../store/database.js';

/**
 * The HTTP status of every error code, and the only place one is chosen: services throw
 * `PlinthError`s that say what went wrong, routes let them through, and this table decides
 * how HTTP reports it. A `Record` over `ErrorCode`, so a new code cannot miss its status.
 */
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
  unsupported_media_type: 415,
  unsupported: 422,
  checksum_mismatch: 422,
  provider_failed: 502,
  unavailable: 503,
  timeout: 504,
  internal: 500,
};

export const httpStatus = (code: ErrorCode): number => STATUS[code];

/**
 * The one place errors become HTTP responses: `{ "error": { "code", "message", "details" } }`.
 * Validation failures name the field; unexpected errors are logged and answered with a
 * generic 500 that leaks nothing.
 */
interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
  /** Set when a key of an object broke `propertyNames` (tag keys): the value's path names the object. */
  propertyName?: string;
}

/** `/identity/macs/0` → `identity.macs[0]` */
function fieldPath(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((seg) => seg.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
}

const PART: Record<string, string> = { body: 'body', querystring: 'query parameter', params: 'path parameter', headers: 'header' };

export function describeValidation(errors: AjvError[], context: string | undefined): { field: string; message: string } {
  const e = errors[0]!;
  let field = fieldPath(e.instancePath);
  let problem = e.message ?? 'is invalid';
  const join = (a: string, b: string) => (a ? `${a}.${b}` : b);
  switch (e.keyword) {
    case 'additionalProperties':
      field = join(field, String(e.params.additionalProperty));
      problem = 'is not a known field';
      break;
    case 'required':
      field = join(field, String(e.params.missingProperty));
      problem = 'is required';
      break;
    case 'enum':
      problem = `must be one of ${(e.params.allowedValues as unknown[]).join(', ')}`;
      break;
    case 'minProperties':
      problem = 'must not be empty';
      break;
  }
  if (e.propertyName !== undefined) problem = `key '${e.propertyName.slice(0, 80)}' ${problem}`;
  const where = PART[context ?? 'body'] ?? context ?? 'body';
  const label = field || where;
  return { field: label, message: field ? `${label}: ${problem}` : `${where}: ${problem}` };
}

export function errorBody(code: string, message: string, details?: Record<string, unknown>) {
  return { error: { code, message, ...(details ? { details } : {}) } };
}

export function handleError(err: FastifyError & { validation?: AjvError[]; validationContext?: string }, req: FastifyRequest, reply: FastifyReply) {
  if (err instanceof PlinthError) {
    const status = STATUS[err.code] ?? 500;
    if (status >= 500) req.log.error({ err }, err.message);
    return reply.status(status).send(errorBody(err.code, err.message, err.details));
  }
  if (err.validation) {
    const { field, message } = describeValidation(err.validation, err.validationContext);
    return reply.status(400).send(errorBody('validation', message, { field, in: err.validationContext ?? 'body' }));
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return reply.status(413).send(errorBody('payload_too_large', 'request body is larger than the limit'));
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return reply.status(415).send(errorBody('unsupported_media_type', `content type '${req.headers['content-type']}' is not accepted; send application/json`));
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return reply.status(400).send(errorBody('validation', 'body: a JSON body is required'));
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return reply.status(400).send(errorBody('validation', `body: not valid JSON (${err.message})`));
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    if (err instanceof SyntaxError) return reply.status(400).send(errorBody('validation', `body: not valid JSON (${err.message})`));
    return reply.status(err.statusCode).send(errorBody('bad_request', err.message));
  }
  if (nulRefused(err)) {
    return reply.status(400).send(errorBody('validation', 'request: a value contains a NUL character, which cannot be stored'));
  }
  req.log.error({ err }, 'unhandled error');
  return reply.status(500).send(errorBody('internal', 'internal error; see the controller log'));
}
