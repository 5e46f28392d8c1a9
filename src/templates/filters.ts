/**
 * Filters Plinth adds to Liquid's standard set. Each exists because a target format needs it
 * and Liquid has nothing safe for it: quoting for shell, URL parts for preseed's mirror
 * questions, Debian's architecture names, and a way for a template to say a knob is required.
 * (For YAML, Liquid's own `json` filter is right: a JSON scalar or list is valid YAML.)
 */

/** Thrown by a filter that refuses its input; the renderer reports it at the filter's position. */
export class FilterRefusal extends Error {
  override readonly name = 'FilterRefusal';
}

/** One POSIX shell word. `'"'"'` rather than `'\''`: preseed files must not contain backslashes. */
function shellQuote(value: unknown): string {
  if (Array.isArray(value)) return value.map((v) => shellQuote(v)).join(' ');
  return `'${String(value ?? '').replaceAll("'", `'"'"'`)}'`;
}

/** Fails the render with a message naming the knob, instead of rendering an empty value. */
function required(value: unknown, what?: unknown): unknown {
  if (value === null || value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) {
    throw new FilterRefusal(`${what === undefined ? 'a value' : String(what)} is required by this template but is not set`);
  }
  return value;
}

const DEBIAN_ARCHITECTURES: Record<string, string> = {
  x86_64: 'amd64',
  amd64: 'amd64',
  aarch64: 'arm64',
  arm64: 'arm64',
  i386: 'i386',
  i686: 'i386',
  ppc64le: 'ppc64el',
  s390x: 's390x',
  riscv64: 'riscv64',
};

function debianArch(value: unknown): string {
  const arch = DEBIAN_ARCHITECTURES[String(value)];
  if (arch === undefined) throw new FilterRefusal(`no Debian architecture is known for '${String(value)}'`);
  return arch;
}

function parsedUrl(value: unknown): URL {
  try {
    return new URL(String(value));
  } catch {
    throw new FilterRefusal(`'${String(value)}' is not a URL`);
  }
}

/** The date filter without "now" and "today": output must depend on the context alone. */
export function refuseClock(value: unknown): void {
  if (typeof value === 'string' && ['now', 'today'].includes(value.trim().toLowerCase())) {
    throw new FilterRefusal(`date: '${value}' is refused: rendered templates must depend only on their context (they are stored and reused)`);
  }
}

export const PLINTH_FILTERS = {
  shell_quote: shellQuote,
  required,
  debian_arch: debianArch,
  url_scheme: (value: unknown): string => parsedUrl(value).protocol.replace(/:$/, ''),
  url_host: (value: unknown): string => parsedUrl(value).host,
  url_path: (value: unknown): string => parsedUrl(value).pathname.replace(/\/+$/, '') || '/',
} satisfies Record<string, (value: unknown, ...args: unknown[]) => unknown>;

