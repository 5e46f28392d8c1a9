import type { Db, Store } from '../store/database.js';
import { uniqueViolation } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { PlinthError, validation } from '../core/errors.js';
import { requireMachine } from '../inventory/machine-rows.js';
import { builtinSource, checkTemplate, isTemplateKind, isTemplateName, type TemplateKind, type TemplateScope, type TemplateSource } from '../templates/index.js';

/**
 * Template and snippet overrides in the database, per machine > per profile > site-wide, in
 * front of the built-ins. An override is parsed when stored, so a syntax error is refused
 * then (naming line and column), not discovered at the next deploy.
 */
export type OverrideScope = { scope: 'site' } | { scope: 'profile'; profile: string } | { scope: 'machine'; machineId: string };

export interface StoredOverride {
  id: string;
  scope: 'site' | 'profile' | 'machine';
  owner: string | null;
  kind: string;
  name: string;
  body: string;
  updatedAt: string;
}

const keyOf = (s: OverrideScope) => (s.scope === 'site' ? '' : s.scope === 'profile' ? s.profile : s.machineId);

export class TemplateStore {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Where an override lives, as an operator names it: the site, a profile by name, a machine by name or id. */
  async scopeOf(q: { scope?: 'site' | 'profile' | 'machine'; owner?: string }): Promise<OverrideScope> {
    const scope = q.scope ?? 'site';
    if (scope === 'site') return { scope: 'site' };
    if (!q.owner) throw validation('owner', `is required for ${scope} overrides`);
    if (scope === 'profile') return { scope: 'profile', profile: q.owner };
    return { scope: 'machine', machineId: (await requireMachine(this.store.db, this.store.dialect, q.owner)).id };
  }

  /** A TemplateSource reading overrides through `db` (pass the transaction's when inside one). */
  source(db: Db = this.store.db): TemplateSource {
    const find = async (scope: string, key: string, kind: string, name: string) =>
      db.selectFrom('template_overrides').select(['id', 'body']).where('scope', '=', scope).where('scope_key', '=', key).where('kind', '=', kind).where('name', '=', name).executeTakeFirst();
    return {
      async lookup(scope: TemplateScope, kind: TemplateKind, name: string) {
        if (scope.machine) {
          const r = await find('machine', scope.machine, kind, name);
          if (r) return { body: r.body, origin: 'machine', id: r.id };
        }
        if (scope.profile) {
          const r = await find('profile', scope.profile, kind, name);
          if (r) return { body: r.body, origin: 'profile', id: r.id };
        }
        const site = await find('site', '', kind, name);
        if (site) return { body: site.body, origin: 'site', id: site.id };
        return builtinSource.lookup(scope, kind, name);
      },
    };
  }

  async put(scope: OverrideScope, kind: string, name: string, body: string): Promise<StoredOverride> {
    if (!isTemplateKind(kind)) throw validation('kind', `'${kind}' is not a template kind`);
    if (!isTemplateName(name)) throw validation('name', `'${name}' is not a template or snippet name`);
    checkTemplate(kind, name, body);
    const now = iso(this.clock.now());
    const key = keyOf(scope);
    return this.store.transaction(async (trx) => {
      const existing = await trx
        .selectFrom('template_overrides')
        .select('id')
        .where('scope', '=', scope.scope)
        .where('scope_key', '=', key)
        .where('kind', '=', kind)
        .where('name', '=', name)
        .executeTakeFirst();
      if (existing) {
        await trx.updateTable('template_overrides').set({ body, updated_at: now }).where('id', '=', existing.id).execute();
        return { id: existing.id, scope: scope.scope, owner: key || null, kind, name, body, updatedAt: now };
      }
      const id = newId();
      try {
        await trx.insertInto('template_overrides').values({ id, scope: scope.scope, scope_key: key, kind, name, body, created_at: now, updated_at: now }).execute();
      } catch (e) {
        if (uniqueViolation(e)) throw new PlinthError('conflict', 'the override was just written by someone else; try again');
        throw e;
      }
      return { id, scope: scope.scope, owner: key || null, kind, name, body, updatedAt: now };
    });
  }

  async list(filter: { kind?: string } = {}): Promise<StoredOverride[]> {
    let q = this.store.db.selectFrom('template_overrides').selectAll();
    if (filter.kind) q = q.where('kind', '=', filter.kind);
    const rows = await q.orderBy('kind').orderBy('name').orderBy('scope').execute();
    return rows.map((r) => ({ id: r.id, scope: r.scope as StoredOverride['scope'], owner: r.scope_key || null, kind: r.kind, name: r.name, body: r.body, updatedAt: r.updated_at }));
  }

  async delete(scope: OverrideScope, kind: string, name: string): Promise<void> {
    const r = await this.store.db
      .deleteFrom('template_overrides')
      .where('scope', '=', scope.scope)
      .where('scope_key', '=', keyOf(scope))
      .where('kind', '=', kind)
      .where('name', '=', name)
      .executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new PlinthError('not_found', `no ${scope.scope} override of ${kind}/${name}`);
  }
}
