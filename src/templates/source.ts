import { BUILTIN } from './builtin/index.js';
import type { TemplateKind } from './kinds.js';

/** Where a template or snippet came from, most specific first. */
export type TemplateOrigin = 'machine' | 'profile' | 'site' | 'builtin';
export const TEMPLATE_ORIGINS: readonly TemplateOrigin[] = ['machine', 'profile', 'site', 'builtin'];

/** Which overrides apply to a render: those of this machine (its id) and of this profile (its name). */
export interface TemplateScope {
  machine?: string | undefined;
  profile?: string | undefined;
}

export interface ResolvedTemplate {
  body: string;
  origin: TemplateOrigin;
  /** The stored override's id, for the record of what a run used; absent for built-ins. */
  id?: string | undefined;
}

/**
 * Where templates and snippets come from. The controller implements it over the database; tests
 * use `MemoryTemplateSource`.
 *
 * Contract: `lookup` returns the first definition of `kind`/`name` along the chain machine >
 * profile > site > built-in, or null when none defines it. It may do I/O and may be called many
 * times for one render (renders memoise it, so one render sees one consistent answer per name).
 * It must not throw for a name that is merely undefined; a thrown error means the source is
 * unavailable and is passed to the caller unchanged, never turned into a template error.
 */
export interface TemplateSource {
  lookup(scope: TemplateScope, kind: TemplateKind, name: string): Promise<ResolvedTemplate | null>;
}

/** The templates and snippets shipped with Plinth. */
export const builtinSource: TemplateSource = {
  async lookup(_scope, kind, name) {
    const builtin = BUILTIN[kind];
    const body = Object.hasOwn(builtin.templates, name) ? builtin.templates[name]!.body : Object.hasOwn(builtin.snippets, name) ? builtin.snippets[name]! : undefined;
    return body === undefined ? null : { body, origin: 'builtin' };
  },
};

/** Asks each source in turn; the first answer wins. */
export function chainSources(...sources: TemplateSource[]): TemplateSource {
  return {
    async lookup(scope, kind, name) {
      for (const source of sources) {
        const found = await source.lookup(scope, kind, name);
        if (found !== null) return found;
      }
      return null;
    },
  };
}

export interface TemplateOverride {
  origin: Exclude<TemplateOrigin, 'builtin'>;
  /** The machine id for `machine`, the profile name for `profile`; unused for `site`. */
  owner?: string | undefined;
  kind: TemplateKind;
  name: string;
  body: string;
  id?: string | undefined;
}

/**
 * Overrides held in memory, in front of the built-ins (unless `fallback` says otherwise): what
 * tests use, and the reference for how a database-backed source must answer.
 */
export class MemoryTemplateSource implements TemplateSource {
  private readonly overrides = new Map<string, ResolvedTemplate>();

  constructor(overrides: TemplateOverride[] = [], private readonly fallback: TemplateSource | null = builtinSource) {
    for (const o of overrides) this.define(o);
  }

  /** Adds or replaces an override. */
  define(o: TemplateOverride): this {
    const owner = o.origin === 'site' ? '' : o.owner;
    if (owner === undefined) throw new Error(`a ${o.origin} override needs an owner`);
    this.overrides.set(key(o.origin, owner, o.kind, o.name), { body: o.body, origin: o.origin, id: o.id ?? `${o.origin}:${owner ? `${owner}:` : ''}${o.kind}/${o.name}` });
    return this;
  }

  /** Removes an override; true when there was one. */
  remove(origin: TemplateOverride['origin'], owner: string | undefined, kind: TemplateKind, name: string): boolean {
    return this.overrides.delete(key(origin, origin === 'site' ? '' : (owner ?? ''), kind, name));
  }

  async lookup(scope: TemplateScope, kind: TemplateKind, name: string): Promise<ResolvedTemplate | null> {
    const candidates: [TemplateOverride['origin'], string | undefined][] = [
      ['machine', scope.machine],
      ['profile', scope.profile],
      ['site', ''],
    ];
    for (const [origin, owner] of candidates) {
      if (owner === undefined) continue;
      const found = this.overrides.get(key(origin, owner, kind, name));
      if (found) return { ...found };
    }
    return this.fallback === null ? null : this.fallback.lookup(scope, kind, name);
  }
}

const key = (origin: string, owner: string, kind: string, name: string) => JSON.stringify([origin, owner, kind, name]);
