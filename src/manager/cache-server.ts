import { createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from '../core/logger.js';
import { checkCacheUrl, type SiteCacheFetch, type SiteCacheReport } from '../protocol/site-cache.js';
import { CacheError, type FileCache } from './file-cache.js';

/** What the cache server asks the controller. */
export interface CacheAuthority {
  /** Whether the run is still under way on a machine of this site (the controller would serve it). */
  runActive(runId: string): Promise<boolean>;
  /** Told of each download served to a run (for the machine's boot trace); must not throw or block. */
  served(f: SiteCacheFetch): void;
}

export interface CacheServerOptions {
  cache: FileCache;
  authority: CacheAuthority;
  log: Logger;
  /** How long the controller's answer about a run is reused. */
  runCheckMs?: number;
  now?: () => number;
}

/**
 * The HTTP side of a site cache, for the site's machines: `GET|HEAD /files/SHA256/NAME?run=…&
 * expires=…&sig=…` (a URL the controller signed for a run; protocol/site-cache.ts) answered
 * from the cache with Range and If-Range (the agent resumes with them; the ETag is the
 * sha256), `GET /metrics` (Prometheus) and `GET /healthz`. A request is served only when its
 * signature checks out with the site's key and the controller says its run is still under
 * way (the answer reused for `runCheckMs`, 10 s by default); anything else is refused with a
 * one-line reason.
 */
export class CacheServer {
  private key: Buffer | null = null;
  private server: Server | null = null;
  private readonly runAnswers = new Map<string, { active: Promise<boolean>; at: number }>();
  private readonly registry = new Registry();
  private readonly now: () => number;

  constructor(private readonly o: CacheServerOptions) {
    this.now = o.now ?? Date.now;
    const f = o.cache.figures;
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    new Gauge({ name: 'plinth_site_cache_limit_bytes', help: 'size limit of the cached files', registers: [this.registry], collect: function () { this.set(o.cache.limitBytes); } });
    new Gauge({ name: 'plinth_site_cache_used_bytes', help: 'bytes of the cached files', registers: [this.registry], collect: function () { this.set(o.cache.usedBytes); } });
    new Gauge({ name: 'plinth_site_cache_files', help: 'files held', registers: [this.registry], collect: function () { this.set(o.cache.fileCount); } });
    counter('plinth_site_cache_hits_total', 'requests answered from a file already held', () => f.hits);
    counter('plinth_site_cache_misses_total', 'requests that waited for a fetch from the controller', () => f.misses);
    counter('plinth_site_cache_fetches_total', 'files fetched from the controller and verified', () => f.fetches);
    counter('plinth_site_cache_fetched_bytes_total', 'bytes received from the controller', () => f.fetchedBytes);
    counter('plinth_site_cache_served_bytes_total', "bytes sent to the site's machines", () => f.servedBytes);
    counter('plinth_site_cache_evictions_total', 'files evicted to stay under the size limit', () => f.evictions);
    counter('plinth_site_cache_rejected_total', 'fetched files thrown away: wrong sha256 or size', () => f.rejected);
    counter('plinth_site_cache_refused_total', 'requests refused: bad or expired signature, or an ended run', () => f.refused);
  }

  /** The site's URL key, from the controller's answer to the cache's report; requests wait for it (503). */
  setKey(key: Buffer): void {
    this.key = key;
  }

  /** The figures a manager reports to the controller. */
  report(url: string): SiteCacheReport {
    const c = this.o.cache;
    return { url, limitBytes: c.limitBytes, usedBytes: c.usedBytes, files: c.fileCount, ...c.figures };
  }

  async listen(host: string, port: number): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        this.o.log.error({ err: e }, 'site cache: request failed');
        if (!res.headersSent) text(res, 500, 'internal error');
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const a = server.address() as { address: string; port: number; family: string };
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://cache');
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'only GET and HEAD');
    if (url.pathname === '/healthz') return text(res, 200, 'ok');
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': this.registry.contentType });
      res.end(await this.registry.metrics());
      return;
    }
    if (!this.key) return text(res, 503, 'the cache has not reached the controller yet', { 'retry-after': '5' });
    const checked = checkCacheUrl(this.key, url.pathname, url.searchParams, Math.floor(this.now() / 1000));
    if ('why' in checked) {
      this.o.cache.figures.refused++;
      return text(res, checked.status, checked.why);
    }
    const { grant } = checked;
    let active: boolean;
    try {
      active = await this.runActive(grant.runId);
    } catch (e) {
      return text(res, 503, `cannot ask the controller about run ${grant.runId}: ${(e as Error).message}`, { 'retry-after': '5' });
    }
    if (!active) {
      this.o.cache.figures.refused++;
      return text(res, 403, `run ${grant.runId} has ended, or is not on a machine of this site`);
    }
    const range = req.headers.range?.slice(0, 128);
    let held;
    try {
      held = await this.o.cache.acquire(grant.sha256);
    } catch (e) {
      if (e instanceof CacheError) {
        this.o.authority.served({ runId: grant.runId, sha256: grant.sha256, cache: 'miss', status: e.status, ...(range ? { range } : {}) });
        return text(res, e.status, e.message, e.status === 503 ? { 'retry-after': '5' } : {});
      }
      throw e;
    }
    res.once('close', held.release);
    const status = await this.sendRange(req, res, held.path, held.size, `"${grant.sha256}"`);
    this.o.authority.served({ runId: grant.runId, sha256: grant.sha256, cache: held.hit ? 'hit' : 'miss', status, ...(range ? { range } : {}) });
  }

  private runActive(runId: string): Promise<boolean> {
    const now = this.now();
    const known = this.runAnswers.get(runId);
    if (known && now - known.at < (this.o.runCheckMs ?? 10_000)) return known.active;
    if (this.runAnswers.size > 10_000) this.runAnswers.clear();
    const active = this.o.authority.runActive(runId);
    // A failed question is asked again by the next request, not remembered.
    active.catch(() => this.runAnswers.delete(runId));
    this.runAnswers.set(runId, { active, at: now });
    return active;
  }

  /** One file, whole or one byte range of it (RFC 9110: a range the file cannot satisfy is 416; several ranges get the whole file). */
  private async sendRange(req: IncomingMessage, res: ServerResponse, path: string, size: number, etag: string): Promise<number> {
    const headers: Record<string, string> = { 'accept-ranges': 'bytes', etag, 'content-type': 'application/octet-stream' };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    const ifRange = req.headers['if-range'];
    if (range && (ifRange === undefined || ifRange === etag)) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      // A last position before the first makes the range invalid: it is ignored, like several ranges.
      if (m && (m[1] || m[2]) && !(m[1] && m[2] && Number(m[2]) < Number(m[1]))) {
        if (!m[1]) {
          start = Math.max(0, size - Number(m[2]));
          if (Number(m[2]) === 0) start = size;
        } else {
          start = Number(m[1]);
          if (m[2]) end = Math.min(Number(m[2]), size - 1);
        }
        if (start >= size) {
          res.writeHead(416, { ...headers, 'content-range': `bytes */${size}` });
          res.end();
          return 416;
        }
        status = 206;
        headers['content-range'] = `bytes ${start}-${end}/${size}`;
      }
    }
    headers['content-length'] = String(Math.max(0, end - start + 1));
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || end < start) {
      res.end();
      return status;
    }
    const figures = this.o.cache.figures;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        figures.servedBytes += chunk.length;
        cb(null, chunk);
      },
    });
    // A machine that hangs up mid-file is no error of the cache's.
    await pipeline(createReadStream(path, { start, end, highWaterMark: 1024 * 1024 }), count, res).catch(() => undefined);
    return status;
  }
}

function text(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(`${message}\n`);
}
