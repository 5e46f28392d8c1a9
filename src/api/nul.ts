import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PlinthError } from '../core/errors.js';

/**
 * No NUL character in any string of an API request. PostgreSQL cannot store U+0000 in text
 * or jsonb and fails the statement (a 500 after part of a request may have run), SQLite
 * stores it and C tools downstream cut the value there: the same request must get the same
 * answer on both, before any handler runs. Checked after parsing (JSON escapes `\u0000`,
 * URLs `%00`) in the body, the query string and path parameters, keys as well as values.
 */

/** Where the first NUL is, as the API names fields (`identity.macs[0]`), or null. Iterative: nesting depth is the client's choice. */
export function findNul(value: unknown): { field: string; inKey: boolean } | null {
  const stack: Array<{ value: unknown; path: string }> = [{ value, path: '' }];
  while (stack.length) {
    const { value: v, path } = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return { field: path, inKey: false };
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push({ value: item, path: `${path}[${i}]` }));
    } else if (v !== null && typeof v === 'object' && isPlain(v)) {
      for (const [k, item] of Object.entries(v)) {
        if (k.includes('\u0000')) return { field: path, inKey: true };
        stack.push({ value: item, path: path ? `${path}.${k}` : k });
      }
    }
  }
  return null;
}

/**
 * Parsed JSON, query and params objects only (the router's have a prototype that itself has
 * none); uploads arrive as streams or Buffers and are bytes, not text.
 */
const isPlain = (v: object): boolean => {
  const proto = Object.getPrototypeOf(v) as object | null;
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
};

const PARTS = [
  ['body', 'body', (r: FastifyRequest) => r.body],
  ['querystring', 'query parameter', (r: FastifyRequest) => r.query],
  ['params', 'path parameter', (r: FastifyRequest) => r.params],
] as const;

/** Refuses, with a 400 naming the field, every `/api/` request carrying a NUL character. */
export function registerNulRefusal(app: FastifyInstance): void {
  app.addHook('preValidation', async (req) => {
    if (!req.url.startsWith('/api/')) return;
    for (const [part, label, read] of PARTS) {
      const found = findNul(read(req));
      if (!found) continue;
      const field = found.field || label;
      const problem = found.inKey ? 'a key contains a NUL character' : 'must not contain a NUL character';
      throw new PlinthError('validation', `${field}: ${problem}`, { details: { field, in: part } });
    }
  });
}
