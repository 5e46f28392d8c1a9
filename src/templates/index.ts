/**
 * Templates: a safe Liquid engine (no file system, no code), built-in templates for every
 * kind split into overridable snippets, and the render context they see. See docs/templates.md.
 */
export { TEMPLATE_KINDS, TEMPLATE_NAME_PATTERN, isTemplateKind, isTemplateName } from './kinds.js';
export type { TemplateKind, BuiltinKind } from './kinds.js';
export { BUILTIN } from './builtin/index.js';
export { renderTemplate, renderArtifacts, checkTemplate, contentTypeOf } from './render.js';
export type { RenderedTemplate } from './render.js';
export { builtinSource, chainSources, MemoryTemplateSource, TEMPLATE_ORIGINS } from './source.js';
export type { TemplateSource, TemplateScope, TemplateOrigin, ResolvedTemplate, TemplateOverride } from './source.js';
export { buildRenderContext, OS_DEFAULTS } from './context.js';
export type { RenderContext, RenderContextInput, RenderMachine, RenderController, RenderNic, RenderNetwork, StaticNetwork, RenderDisk, OsSettings } from './context.js';
export { TemplateError, isTemplateError } from './template-error.js';
export type { TemplateLocation } from './template-error.js';
export { MAX_INCLUDES_PER_RENDER } from './snippet-fs.js';
