import type { FS } from 'liquidjs';
import { isTemplateName, type TemplateKind } from './kinds.js';
import type { ResolvedTemplate, TemplateOrigin, TemplateScope, TemplateSource } from './source.js';

/**
 * Liquid reads `{% include %}`, `{% render %}` and `{% layout %}` targets through a file-system
 * interface. This one has no file system behind it: a "path" is a snippet name, looked up along
 * the resolution chain of one kind and one scope. A name that is not a template name (`/etc/passwd`,
 * `../x`) is refused before any lookup.
 */

/** A snippet name that is refused or not defined; reported at the include's position. */
export class SnippetRefusal extends Error {
  override readonly name = 'SnippetRefusal';
}

/** The source itself failed (its database is down…): passed on unchanged, never as a template error. */
export class SourceFailure extends Error {
  override readonly name = 'SourceFailure';
  constructor(readonly original: unknown) {
    super('the template source failed', { cause: original });
  }
}

/**
 * Includes per render, all snippets counted: generous for any real template, and reached within
 * milliseconds by a snippet that includes itself (which would otherwise exhaust memory first).
 */
export const MAX_INCLUDES_PER_RENDER = 256;

/** Memoised lookups for one kind and scope: one render (or one set of artifacts) sees one answer per name. */
export class SnippetResolver {
  private readonly memo = new Map<string, Promise<ResolvedTemplate | null>>();

  constructor(
    private readonly source: TemplateSource,
    private readonly scope: TemplateScope,
    readonly kind: TemplateKind,
  ) {}

  lookup(name: string): Promise<ResolvedTemplate | null> {
    let found = this.memo.get(name);
    if (found === undefined) {
      found = this.source.lookup(this.scope, this.kind, name);
      this.memo.set(name, found);
    }
    return found;
  }

  /** The snippet, or a SnippetRefusal saying why not. */
  async require(name: string): Promise<ResolvedTemplate> {
    if (!isTemplateName(name)) throw new SnippetRefusal(`invalid snippet name ${JSON.stringify(name)}: snippets are named like 'network' or 'ks.cfg', never by path`);
    let found: ResolvedTemplate | null;
    try {
      found = await this.lookup(name);
    } catch (e) {
      throw new SourceFailure(e);
    }
    if (found === null) throw new SnippetRefusal(`snippet not found: ${this.kind}/${name}`);
    return found;
  }
}

/** The file-system face of a resolver for one render; it records what the render used. */
export class SnippetFs implements FS {
  readonly sep = '/';
  /** Name → origin of the template and every snippet this render read. */
  readonly origins: Record<string, TemplateOrigin> = {};
  /** Name → id of each stored override this render read. */
  readonly overrideIds: Record<string, string> = {};
  /**
   * Source text → name. Liquid does not keep the file name on every token (undefined-variable
   * errors lack it), but every token keeps its source text, which identifies the snippet.
   */
  readonly namesBySource = new Map<string, string>();
  private includes = 0;

  constructor(private readonly resolver: SnippetResolver) {}

  record(name: string, found: ResolvedTemplate): void {
    this.origins[name] = found.origin;
    if (found.id !== undefined) this.overrideIds[name] = found.id;
    if (!this.namesBySource.has(found.body)) this.namesBySource.set(found.body, name);
  }

  resolve(_dir: string, file: string): string {
    return file;
  }

  async exists(name: string): Promise<boolean> {
    await this.resolver.require(name);
    return true;
  }

  async readFile(name: string): Promise<string> {
    this.includes += 1;
    if (this.includes > MAX_INCLUDES_PER_RENDER) throw new SnippetRefusal(`more than ${MAX_INCLUDES_PER_RENDER} snippet inclusions in one render: does a snippet include itself?`);
    const found = await this.resolver.require(name);
    this.record(name, found);
    return found.body;
  }

  async contains(): Promise<boolean> {
    return true;
  }

  containsSync(): boolean {
    return true;
  }

  // Templates render asynchronously only: the source behind this may be a database.
  existsSync(): boolean {
    throw new Error('templates are rendered asynchronously');
  }

  readFileSync(): string {
    throw new Error('templates are rendered asynchronously');
  }
}
