import { appendEvent } from '../events/log.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../store/database.js';
import { uniqueViolation } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newId, newSecret } from '../core/ids.js';
import { PlinthError, duplicate, validation } from '../core/errors.js';

/**
 * API bearer tokens. A token is 32 random bytes; only its SHA-256 is stored (a fast hash is
 * right for high-entropy secrets: there is nothing to brute-force). Three roles, each
 * including the ones below it: admin > operator > reader.
 */
export const ROLES = ['reader', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const roleAtLeast = (have: Role, need: Role): boolean => ROLES.indexOf(have) >= ROLES.indexOf(need);

export interface ApiToken {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  createdBy: string | null;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

export const TOKEN_PREFIX = 'plinth';
export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');
export const ADMIN_TOKEN_FILE = 'admin.token';
const BOOTSTRAP_NAME = 'admin';
/** last_used_at is written at most this often per token, to keep reads read-only. */
const LAST_USED_GRANULARITY_MS = 60_000;

type Row = {
  id: string;
  name: string;
  role: string;
  created_at: string;
  created_by: string | null;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
};

const toToken = (r: Row): ApiToken => ({
  id: r.id,
  name: r.name,
  role: r.role as Role,
  createdAt: r.created_at,
  createdBy: r.created_by,
  lastUsedAt: r.last_used_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
});

/**
 * An expiry as a UTC ISO instant, so every reader sees one form. The schema's date-time
 * format admits values Date cannot hold (a leap second `23:59:60`): those are refused.
 */
function expiryInstant(text: string): string {
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw validation('expiresAt', `'${text}' is not a date-time this controller can compare`);
  return iso(new Date(t));
}

const COLUMNS = ['id', 'name', 'role', 'created_at', 'created_by', 'last_used_at', 'expires_at', 'revoked_at'] as const;

export class TokenService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async create(input: { name: string; role: Role; expiresAt?: string | null }, createdBy: string | null): Promise<{ token: string; record: ApiToken }> {
    const token = newSecret(TOKEN_PREFIX);
    const now = iso(this.clock.now());
    const row = {
      id: newId(),
      name: input.name,
      role: input.role,
      token_hash: hashToken(token),
      created_at: now,
      created_by: createdBy,
      last_used_at: null,
      expires_at: input.expiresAt ? expiryInstant(input.expiresAt) : null,
      revoked_at: null,
    };
    try {
      await this.store.transaction(async (trx) => {
        await trx.insertInto('api_tokens').values(row).execute();
        await appendEvent(trx, { type: 'security.token-created', at: now, actor: createdBy ?? 'unknown', action: 'token-created', reason: null, details: { token: row.name, role: row.role } });
      });
    } catch (e) {
      if (uniqueViolation(e)) throw duplicate('name', input.name);
      throw e;
    }
    return { token, record: toToken(row) };
  }

  /** The token's record if it is valid now; null otherwise (unknown, revoked or expired). */
  async verify(token: string): Promise<ApiToken | null> {
    if (!token.startsWith(`${TOKEN_PREFIX}_`)) return null;
    const hash = hashToken(token);
    const row = await this.store.db.selectFrom('api_tokens').select([...COLUMNS, 'token_hash']).where('token_hash', '=', hash).executeTakeFirst();
    if (!row || !timingSafeEqual(Buffer.from(row.token_hash), Buffer.from(hash))) return null;
    const now = this.clock.now();
    if (row.revoked_at) return null;
    // Instants, not text: '…T01:00+14:00' sorts after '…T12:00Z' although it is earlier.
    // A value that does not parse counts as expired (NaN compares false).
    if (row.expires_at && !(Date.parse(row.expires_at) > now.getTime())) return null;
    if (!row.last_used_at || now.getTime() - new Date(row.last_used_at).getTime() > LAST_USED_GRANULARITY_MS) {
      await this.store.db.updateTable('api_tokens').set({ last_used_at: iso(now) }).where('id', '=', row.id).execute();
      row.last_used_at = iso(now);
    }
    return toToken(row);
  }

  async list(): Promise<ApiToken[]> {
    const rows = await this.store.db.selectFrom('api_tokens').select([...COLUMNS]).orderBy('created_at').orderBy('name').execute();
    return rows.map(toToken);
  }

  /** Revokes by id or name. Revoking twice is fine; an unknown token is a 404. */
  async revoke(key: string): Promise<ApiToken> {
    return this.store.transaction(async (trx) => {
      const row = await trx
        .selectFrom('api_tokens')
        .select([...COLUMNS])
        .where((eb) => eb.or([eb('id', '=', key), eb('name', '=', key)]))
        .executeTakeFirst();
      if (!row) throw new PlinthError('not_found', `token '${key}' not found`, { details: { token: key } });
      if (!row.revoked_at) {
        row.revoked_at = iso(this.clock.now());
        await trx.updateTable('api_tokens').set({ revoked_at: row.revoked_at }).where('id', '=', row.id).execute();
        await appendEvent(trx, { type: 'security.token-revoked', at: row.revoked_at, actor: 'admin', action: 'token-revoked', reason: null, details: { token: row.name } });
      }
      return toToken(row);
    });
  }

  /**
   * On first start: when no usable admin token exists, creates one and writes it to
   * DATA_DIR/admin.token (mode 0600). Returns the file path when it wrote one, or null.
   */
  async ensureBootstrapAdmin(dataDir: string): Promise<{ path: string; created: boolean } | null> {
    const path = join(dataDir, ADMIN_TOKEN_FILE);
    if (existsSync(path)) {
      const existing = readFileSync(path, 'utf8').trim();
      if (await this.verify(existing)) return { path, created: false };
    }
    const admins = await this.store.db
      .selectFrom('api_tokens')
      .select('id')
      .where('role', '=', 'admin')
      .where('revoked_at', 'is', null)
      .execute();
    if (admins.length > 0) return null;
    let token: string;
    try {
      ({ token } = await this.create({ name: BOOTSTRAP_NAME, role: 'admin' }, 'bootstrap'));
    } catch (e) {
      if (e instanceof PlinthError && e.code === 'duplicate') {
        // A revoked bootstrap token holds the name: pick a fresh one.
        ({ token } = await this.create({ name: `${BOOTSTRAP_NAME}-${Date.now()}`, role: 'admin' }, 'bootstrap'));
      } else throw e;
    }
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path, `${token}\n`, { mode: 0o600 });
    chmodSync(path, 0o600);
    return { path, created: true };
  }
}
