import type { LightMyRequestResponse } from 'fastify';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createController, type Controller, type ControllerOptions } from '../../src/controller.js';
import { createLogger } from '../../src/core/logger.js';
import type { Backend } from './backends.js';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real controller on a real database for integration tests. HTTP goes through the real
 * Fastify app in-process (`inject`), or through a socket after `listen()`.
 */
export interface TestController {
  controller: Controller;
  config: Config;
  adminToken: string;
  /** JSON request as the admin (or with `token`). */
  api(method: string, path: string, body?: unknown, token?: string | null): Promise<LightMyRequestResponse & { json<T = any>(): T }>;
  /** A request as a machine or the agent sends it: no token unless given, headers as given. */
  inject(method: string, url: string, opts?: InjectOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export interface InjectOptions {
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface TestDatabase {
  url: string;
  dataDir: string;
  drop(): Promise<void>;
}

export async function startController(
  db: TestDatabase,
  overrides: Record<string, unknown> = {},
  opts: ControllerOptions = {},
): Promise<TestController> {
  const config = loadConfig({
    flags: { dataDir: db.dataDir, databaseUrl: db.url.startsWith('postgres') ? db.url : '', listen: '127.0.0.1:0', logLevel: 'silent', ...overrides },
  });
  const controller = await createController(config, { logger: createLogger('silent'), noBackground: true, ...opts });
  // A second controller on a shared database finds an admin already there and writes no file.
  const tokenFile = join(config.dataDir, 'admin.token');
  const adminToken = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '';
  return {
    controller,
    config,
    adminToken,
    async api(method, path, body, token = adminToken) {
      const headers: Record<string, string> = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (typeof body === 'string') headers['content-type'] = 'application/json';
      const res = await controller.app.inject({
        method: method as 'GET',
        url: path,
        headers,
        ...(body !== undefined ? { payload: body as object } : {}),
      });
      return res as LightMyRequestResponse & { json<T = any>(): T };
    },
    inject(method, url, opts = {}) {
      return controller.app.inject({
        method: method as 'GET',
        url,
        headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.headers ?? {}) },
        ...(opts.body !== undefined ? { payload: opts.body as object } : {}),
      });
    },
    close: () => controller.close(),
  };
}

/** A fresh database of the backend plus a controller on it; `close` tears both down. */
export async function freshController(backend: Backend, overrides: Record<string, unknown> = {}, opts: ControllerOptions = {}) {
  const db = await backend.create();
  const t = await startController(db, overrides, opts);
  return {
    ...t,
    db,
    async close() {
      await t.close();
      await db.drop();
    },
  };
}

/** Everything a request could have changed, to prove a rejected one changed nothing. */
export async function snapshot(c: Controller): Promise<string> {
  const db = c.services.store.db;
  const tables = ['machines', 'machine_macs', 'machine_tags', 'events', 'runs', 'api_tokens'] as const;
  const parts: unknown[] = [];
  for (const t of tables) {
    parts.push(await db.selectFrom(t).selectAll().execute().then((rows) => rows.map((r) => JSON.stringify(r)).sort()));
  }
  return JSON.stringify(parts);
}

/**
 * Installer files with placeholder contents, for a controller whose machines never really boot
 * them (tests play the agent's side over HTTP).
 */
export function placeholderInstaller(prefix = 'plinth-installer-'): () => { kernel: string; initrd: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const files = { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') };
  writeFileSync(files.kernel, 'kernel');
  writeFileSync(files.initrd, 'initrd');
  return () => files;
}
