import { createHmac, timingSafeEqual } from 'node:crypto';
import { Type, type Static } from 'typebox';

/**
 * What a remote site's cache (`plinth manager --cache-dir`) and the controller say to each
 * other, and the URLs machines are given for it.
 *
 * A cache URL names a file by its sha256 and carries a signature by the site's cache key (an
 * HMAC the controller derives per site and hands only to that site's manager, over its admin
 * token): `BASE/files/SHA256/NAME?run=RUN&expires=UNIX&sig=SIG`. The signature covers the
 * sha256, the run and the expiry, so a URL opens exactly one file, for one run, until then; the
 * manager also asks the controller whether the run is still under way before serving. NAME is
 * for humans and logs (iPXE shows it); it is not signed and selects nothing.
 */

export const SHA256_PATTERN = '^[0-9a-f]{64}$';
const SHA256 = /^[0-9a-f]{64}$/;

/** What the manager reports about its cache (every report, and on `GET /metrics` of the cache). */
export const SiteCacheReportSchema = Type.Object(
  {
    url: Type.String({ maxLength: 2048, pattern: '^https?://[^/?#\\s]+/?$', description: "the cache's URL as the site's machines reach it (--advertise-url)" }),
    limitBytes: Type.Integer({ minimum: 1, description: 'eviction keeps the files under this size (--cache-size)' }),
    usedBytes: Type.Integer({ minimum: 0, description: 'bytes of the files held' }),
    files: Type.Integer({ minimum: 0 }),
    hits: Type.Integer({ minimum: 0, description: 'requests answered from a file already held' }),
    misses: Type.Integer({ minimum: 0, description: 'requests that had to wait for a fetch from the controller (theirs or one already under way)' }),
    fetches: Type.Integer({ minimum: 0, description: 'files fetched from the controller' }),
    fetchedBytes: Type.Integer({ minimum: 0, description: 'bytes received from the controller' }),
    servedBytes: Type.Integer({ minimum: 0, description: "bytes sent to the site's machines" }),
    evictions: Type.Integer({ minimum: 0 }),
    rejected: Type.Integer({ minimum: 0, description: "fetched files thrown away: their sha256 or size was not the one named" }),
    refused: Type.Integer({ minimum: 0, description: 'requests refused: bad or expired signature, or a run the controller says has ended' }),
  },
  { additionalProperties: false },
);
export type SiteCacheReport = Static<typeof SiteCacheReportSchema>;

/** The controller's answer to a report: the key cache URLs of this site are signed with. */
export const SiteCacheAnswerSchema = Type.Object({
  key: Type.String({ description: 'base64url HMAC key of this site\'s cache URLs; a secret: the manager keeps it in memory only' }),
  prefetch: Type.Array(Type.String({ pattern: SHA256_PATTERN }), {
    description: "files the site's machines will ask for (the installer while a run is under way at the site, the images of its deploys): the cache fetches those it lacks now",
  }),
});
export type SiteCacheAnswer = Static<typeof SiteCacheAnswerSchema>;

/** A download the cache served (or refused for want of the file), for the machine's boot trace. */
export const SiteCacheFetchSchema = Type.Object(
  {
    runId: Type.String({ maxLength: 64 }),
    sha256: Type.String({ pattern: SHA256_PATTERN }),
    cache: Type.Union([Type.Literal('hit'), Type.Literal('miss')], { description: 'hit: the file was held; miss: it was fetched from the controller first (by this request or one it waited for)' }),
    status: Type.Integer({ minimum: 100, maximum: 599, description: 'the HTTP status the machine got' }),
    range: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: false },
);
export type SiteCacheFetch = Static<typeof SiteCacheFetchSchema>;

/** The controller's answer to "may this run still fetch files?". */
export const SiteCacheRunAnswerSchema = Type.Object({ active: Type.Boolean() });

/** The signed part of a cache URL. */
export interface CacheGrant {
  sha256: string;
  runId: string;
  /** Unix seconds. */
  expires: number;
}

function signature(key: Buffer, g: CacheGrant): string {
  return createHmac('sha256', key).update(`plinth-site-cache-v1\n${g.sha256}\n${g.runId}\n${g.expires}`).digest('base64url');
}

/** A machine's URL of one file at its site's cache. */
export function cacheFileUrl(base: string, key: Buffer, g: CacheGrant & { name: string }): string {
  const q = new URLSearchParams({ run: g.runId, expires: String(g.expires), sig: signature(key, g) });
  return `${base.replace(/\/+$/, '')}/files/${g.sha256}/${encodeURIComponent(g.name)}?${q}`;
}

/**
 * Reads and checks a cache URL's path and query: the grant when the signature is the key's
 * and the expiry is still ahead of `nowSeconds`, else why not (for the refusal's one line).
 */
export function checkCacheUrl(key: Buffer, path: string, query: URLSearchParams, nowSeconds: number): { grant: CacheGrant } | { why: string; status: 403 | 404 } {
  const m = /^\/files\/([^/]+)\/[^/]+$/.exec(path);
  if (!m) return { why: 'not a cache file URL (/files/SHA256/NAME)', status: 404 };
  const sha256 = m[1]!;
  if (!SHA256.test(sha256)) return { why: 'sha256: not 64 lowercase hex digits', status: 404 };
  const runId = query.get('run') ?? '';
  const expiresText = query.get('expires') ?? '';
  const sig = query.get('sig') ?? '';
  if (!runId || !/^\d{1,12}$/.test(expiresText) || !sig) return { why: 'run, expires and sig are required', status: 403 };
  const grant = { sha256, runId, expires: Number(expiresText) };
  const want = Buffer.from(signature(key, grant));
  const got = Buffer.from(sig);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return { why: 'sig: not this site\'s signature of this file and run', status: 403 };
  if (grant.expires <= nowSeconds) return { why: 'expires: this URL has expired', status: 403 };
  return { grant };
}
