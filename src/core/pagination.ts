import { validation } from './errors.js';

/**
 * Keyset pagination: a page is fetched with limit+1 rows; the extra row says there is more,
 * and the cursor is an opaque encoding of the last row's sort key.
 */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export const encodeCursor = (v: string): string => Buffer.from(v, 'utf8').toString('base64url');

export function decodeCursor(c: string, field = 'cursor'): string {
  const v = Buffer.from(c, 'base64url').toString('utf8');
  if (!v || encodeCursor(v) !== c) throw validation(field, 'is not a cursor this API returned');
  return v;
}

/** Cuts limit+1 rows to a page and derives the next cursor from its last item. */
export function pageOf<T>(rows: T[], limit: number, sortKey: (last: T) => string): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(sortKey(last)) : null };
}

/** The id after which a page of an id-ordered history starts (undefined: from the first). */
export function afterId(cursor: string | undefined): number | undefined {
  if (!cursor) return undefined;
  const after = Number(decodeCursor(cursor));
  if (!Number.isInteger(after)) throw validation('cursor', 'is not a cursor this API returned');
  return after;
}
