import { Liquid, LiquidError, type FS, type FilterImplOptions } from 'liquidjs';
import { PlinthError, notFound, validation } from '../core/errors.js';
import { CloudConfigError, isCloudConfig, mergeCloudConfig } from './cloud-config.js';
import { BUILTIN } from './builtin/index.js';
import type { RenderContext } from './context.js';
import { FormatRefusal, PLINTH_FILTERS, refuseClock } from './filters.js';
import { isTemplateKind, isTemplateName, TEMPLATE_KINDS, type TemplateKind } from './kinds.js';
import { SnippetFs, SnippetRefusal, SnippetResolver, SourceFailure } from './snippet-fs.js';
import type { TemplateOrigin, TemplateScope, TemplateSource } from './source.js';
import { TemplateError } from './template-error.js';

export interface RenderedTemplate {
  body: string;
  contentType: string;
  /** The template and every snippet it used → where each came from. */
  origins: Record<string, TemplateOrigin>;
  /** The template and snippets that came from stored overrides → the override's id. */
  overrideIds: Record<string, string>;
}

/**
 * Renders one template of a kind. Includes resolve along the same chain as the template
 * (machine > profile > site > built-in). Errors in the template or its snippets are
 * TemplateErrors naming file, line and column; a missing template is not_found; a failing
 * source's own error is passed on unchanged.
 */
export async function renderTemplate(source: TemplateSource, kind: TemplateKind, name: string, context: RenderContext, scope: TemplateScope = {}): Promise<RenderedTemplate> {
  checkKindAndName(kind, name);
  return renderWith(new SnippetResolver(source, scope, kind), name, context);
}

/**
 * Renders the set of templates a run of this kind stores and serves (cloud-init → user-data,
 * meta-data, network-config), from one consistent view of the overrides.
 */
export async function renderArtifacts(
  source: TemplateSource,
  kind: TemplateKind,
  context: RenderContext,
  scope: TemplateScope = {},
  options: ArtifactOptions = {},
): Promise<Record<string, RenderedTemplate>> {
  checkKindAndName(kind, options.main ?? null);
  const { artifacts: names, main } = BUILTIN[kind];
  if (names.length === 0) {
    throw new PlinthError('unsupported', `${kind} templates are alternatives, not a set: render one of ${Object.keys(BUILTIN[kind].templates).join(', ')}`, { details: { kind } });
  }
  if (options.main !== undefined && main === undefined) throw validation('template', `${kind} has no main template to replace`);
  const resolver = new SnippetResolver(source, scope, kind);
  if (options.main !== undefined && (await resolver.lookup(options.main)) === null) {
    throw validation('template', `no ${kind} template named '${options.main}' (for this machine, its profile or the site)`);
  }
  const rendered: Record<string, RenderedTemplate> = {};
  for (const name of names) {
    if (name === main && options.main !== undefined) rendered[name] = { ...(await renderWith(resolver, options.main, context)), contentType: contentTypeOf(kind, name) };
    else rendered[name] = await renderWith(resolver, name, context);
  }
  return rendered;
}

export interface ArtifactOptions {
  /** A template of the kind rendered in place of its main artifact (BuiltinKind.main) and stored under that name. */
  main?: string | undefined;
}

/**
 * Parses a template or snippet without rendering it, for when an operator uploads an override:
 * syntax errors and unknown filters are reported with line and column. Unknown variables and
 * missing snippets depend on the context and the other overrides, so only a render finds them.
 */
export function checkTemplate(kind: TemplateKind, name: string, body: string): void {
  checkKindAndName(kind, name);
  const liquid = createLiquid(PARSE_ONLY_FS);
  try {
    liquid.parse(body, name);
  } catch (e) {
    throw asTemplateError(e, kind, name, new Map([[body, name]]));
  }
}

/** The content type a template is served with. */
export function contentTypeOf(kind: TemplateKind, name: string): string {
  const builtin = BUILTIN[kind];
  return Object.hasOwn(builtin.templates, name) ? builtin.templates[name]!.contentType : builtin.defaultContentType;
}

async function renderWith(resolver: SnippetResolver, name: string, context: RenderContext): Promise<RenderedTemplate> {
  const kind = resolver.kind;
  // A failing source throws here, unchanged: that is not a template problem.
  const top = await resolver.lookup(name);
  if (top === null) throw notFound('template', `${kind}/${name}`);
  const fs = new SnippetFs(resolver);
  fs.record(name, top);
  const liquid = createLiquid(fs);
  // A JSON copy: templates see data only, never anything they could call.
  const data = JSON.parse(JSON.stringify(context)) as object;
  try {
    const parsed = liquid.parse(top.body, name);
    let body = String(await liquid.render(parsed, {}, { globals: data }));
    if (isCloudConfig(body)) body = mergedCloudConfig(body, kind, name);
    return { body, contentType: contentTypeOf(kind, name), origins: { ...fs.origins }, overrideIds: { ...fs.overrideIds } };
  } catch (e) {
    throw asTemplateError(e, kind, name, fs.namesBySource);
  }
}

function mergedCloudConfig(body: string, kind: TemplateKind, name: string): string {
  try {
    return mergeCloudConfig(body);
  } catch (e) {
    if (!(e instanceof CloudConfigError)) throw e;
    throw new TemplateError(e.message, { template: `${kind}/${name}`, line: null, column: null }, { cause: e });
  }
}

function checkKindAndName(kind: string, name: string | null): void {
  if (!isTemplateKind(kind)) throw new PlinthError('validation', `unknown template kind '${kind}' (known: ${TEMPLATE_KINDS.join(', ')})`, { details: { kind } });
  if (name !== null && !isTemplateName(name)) {
    throw new PlinthError('validation', `invalid template name ${JSON.stringify(name)}: lower-case letters, digits, '-', '_' and single dots`, { details: { kind, name } });
  }
}

/**
 * The one Liquid configuration. Unknown variables and filters are errors (an `if` or `default`
 * on a missing variable is not: that is how templates test optional variables); only own
 * properties of data are visible; whitespace control (`{%-`, `-%}`) trims one line at most, so
 * line-based formats stay predictable; includes go through `fs`, never to disk. One instance
 * per render, uncached: its `fs` is bound to that render's scope, and overrides change.
 */
function createLiquid(fs: FS): Liquid {
  const liquid = new Liquid({
    fs,
    root: ['snippets'],
    relativeReference: false,
    dynamicPartials: true,
    extname: '',
    cache: false,
    strictFilters: true,
    strictVariables: true,
    lenientIf: true,
    ownPropertyOnly: true,
    jsTruthy: false,
    greedy: false,
    timezoneOffset: 0,
    locale: 'en-US',
    // Limits against a template that loops forever or builds enormous strings.
    parseLimit: 1_000_000,
    renderLimit: 2_000,
    memoryLimit: 10_000_000,
  });
  for (const [filterName, filter] of Object.entries(PLINTH_FILTERS)) liquid.registerFilter(filterName, filter as FilterImplOptions);
  const date = liquid.filters['date'];
  const dateHandler = typeof date === 'function' ? date : date?.handler;
  if (dateHandler) {
    liquid.registerFilter('date', function (this: unknown, value: unknown, ...args: unknown[]) {
      refuseClock(value);
      return (dateHandler as (...a: unknown[]) => unknown).call(this, value, ...args);
    } as FilterImplOptions);
  }
  return liquid;
}

const refuseAccess = async (): Promise<never> => {
  throw new SnippetRefusal('snippets are not read when a template is only checked');
};

const PARSE_ONLY_FS: FS = {
  sep: '/',
  resolve: (_dir, file) => file,
  exists: refuseAccess,
  readFile: refuseAccess,
  existsSync: () => false,
  readFileSync: () => {
    throw new SnippetRefusal('snippets are not read when a template is only checked');
  },
  contains: async () => true,
  containsSync: () => true,
};

/** Turns what Liquid throws into a TemplateError naming file, line and column. */
function asTemplateError(e: unknown, kind: TemplateKind, name: string, namesBySource: Map<string, string>): unknown {
  if (!(e instanceof Error) || !LiquidError.is(e)) return e;
  const original = e.originalError;
  if (original instanceof SourceFailure) return original.original;
  const token = e.token;
  const [line, column] = token.getPosition();
  const file = token.file ?? namesBySource.get(token.input) ?? name;
  // Liquid's wrapped error carries the plain reason (undefined variable, refused snippet or filter input…).
  // A refused value is named by the expression that produced it, as well as by its text.
  const reason = original instanceof FormatRefusal ? `${original.message} (in ${token.getText()})` : original !== undefined ? original.message : withoutLocation(e.message);
  return new TemplateError(reason, { template: `${kind}/${name}`, snippet: file === name ? undefined : `${kind}/${file}`, line: line ?? null, column: column ?? null }, { cause: e });
}

/** Liquid appends ", file:F, line:L, col:C" to its messages; the TemplateError says it its own way. */
const withoutLocation = (message: string): string => message.replace(/(, file:.*?)?, line:\d+, col:\d+$/, '');
