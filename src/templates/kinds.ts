/**
 * Template kinds and names. A kind is a family of files one consumer reads (iPXE, cloud-init,
 * Anaconda, the Debian installer, Ubuntu's subiquity, the agent); within a kind, templates and
 * the snippets they include share one namespace, so an operator overrides either the same way.
 */
export const TEMPLATE_KINDS = ['ipxe', 'cloud-init', 'kickstart', 'preseed', 'autoinstall', 'script'] as const;
export type TemplateKind = (typeof TEMPLATE_KINDS)[number];

export const isTemplateKind = (value: string): value is TemplateKind => (TEMPLATE_KINDS as readonly string[]).includes(value);

/**
 * Template and snippet names: lower-case words joined by `-`, `_` or single dots (`ks.cfg`).
 * No slashes and no `..`, so a name can never be read as a path, and names work unchanged
 * as file names and URL segments when a run's artifacts are served.
 */
export const TEMPLATE_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]*(\.[a-z0-9_-]+)*$/;
export const TEMPLATE_NAME_MAX_LENGTH = 64;

export const isTemplateName = (name: string): boolean => name.length <= TEMPLATE_NAME_MAX_LENGTH && TEMPLATE_NAME_PATTERN.test(name);

/** The built-in templates and snippets of one kind. */
export interface BuiltinKind {
  /** Templates: what gets rendered and served, by name, with the content type it is served with. */
  templates: Record<string, { contentType: string; body: string }>;
  /** Snippets: the parts templates include by name, each overridable on its own. */
  snippets: Record<string, string>;
  /**
   * The templates rendered together as one run's artifacts (`renderArtifacts`). Empty when a
   * kind's templates are alternatives of which the caller picks one (the iPXE boot methods).
   */
  artifacts: string[];
  /**
   * The artifact a deploy may render from another template of the kind (`template` in a
   * profile's deploy configuration or a deploy request), served under this name; absent when
   * the kind is not a deploy method's.
   */
  main?: string;
  /** Content type of a template an override adds under a name the built-ins do not have. */
  defaultContentType: string;
}
