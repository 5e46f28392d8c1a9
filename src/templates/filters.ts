/**
 * Filters Plinth adds to Liquid's standard set. Each exists because a target format needs it
 * and Liquid has nothing safe for it: one filter per rendered format (`shell_quote`,
 * `shell_word`, `yaml`, `preseed`, `kickstart`, `cmdline`, `ipxe`, and `line` for comments),
 * URL parts for preseed's mirror questions, Debian's architecture names, and a way for a
 * template to say a knob is required.
 *
 * The format filters escape what their format can escape and refuse what it cannot: a line
 * break cannot be written into a preseed answer or a kickstart command, a space cannot be
 * inside one kernel argument. A refusal names the value and the format, and the renderer adds
 * the template, line and expression; nothing is rendered. Built-in templates pass every value
 * through the filter of the format it lands in, even values the render context has already
 * checked: overrides and stored facts reach templates too.
 */

/** Thrown by a filter that refuses its input; the renderer reports it at the filter's position. */
export class FilterRefusal extends Error {
  override readonly name: string = 'FilterRefusal';
}

/** A value its format cannot carry; the renderer also names the expression that produced it. */
export class FormatRefusal extends FilterRefusal {
  override readonly name = 'FormatRefusal';
}

/** How a refused value is shown: JSON (so a line break reads `\n`), cut short. */
function shown(value: string): string {
  const json = JSON.stringify(value);
  return json.length > 80 ? `${json.slice(0, 77)}…"` : json;
}

/** Values as text: lists joined by spaces, null and undefined empty. */
function text(value: unknown): string {
  if (Array.isArray(value)) return value.map((v) => text(v)).join(' ');
  return String(value ?? '');
}

/**
 * Refuses line breaks and other control characters: every format here is line-based or
 * sits inside one (shell words inside a preseed answer, a YAML block, a kickstart %post).
 */
function oneLine(value: string, format: string): string {
  const bad = /[\x00-\x1f\x7f]/.exec(value);
  if (bad !== null) {
    const what = bad[0] === '\n' || bad[0] === '\r' ? 'a line break' : `a control character (U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0')})`;
    throw new FormatRefusal(`${shown(value)} cannot be written as ${format}: it holds ${what}`);
  }
  return value;
}

/** One POSIX shell word, on one line. `'"'"'` rather than `'\''`: preseed files must not contain backslashes. */
function shellQuote(value: unknown): string {
  if (Array.isArray(value)) return value.map((v) => shellQuote(v)).join(' ');
  return `'${oneLine(text(value), 'a shell word').replaceAll("'", `'"'"'`)}'`;
}

/** Characters a shell word, a kickstart argument and a kernel argument may hold unquoted. */
const BARE_WORD = /^[A-Za-z0-9._/:=,@+%-]+$/;

/**
 * One shell word (or kickstart argument: Anaconda splits its lines like a shell, `#` starting a
 * comment), bare when it is made only of safe characters, single-quoted otherwise.
 */
function shellWord(value: unknown): string {
  if (Array.isArray(value)) return value.map((v) => shellWord(v)).join(' ');
  const s = oneLine(text(value), 'a shell word');
  return BARE_WORD.test(s) ? s : shellQuote(s);
}

/** One line of text, for comments and messages: refused when it holds a line break or control character. */
function line(value: unknown): string {
  return oneLine(text(value), 'one line of text');
}

/** A YAML scalar or flow list: JSON, which YAML reads unchanged, escapes everything and stays on one line. */
function yaml(value: unknown): string {
  return JSON.stringify(value ?? null) ?? 'null';
}

/**
 * The value of a preseed answer (`owner question type value`): debconf reads one line, and a
 * backslash continues it, so both are refused; everything else is taken as it is.
 */
function preseed(value: unknown): string {
  const s = oneLine(text(value), 'a preseed value');
  if (s.includes('\\')) throw new FormatRefusal(`${shown(s)} cannot be written as a preseed value: it holds a backslash, which continues the line`);
  return s;
}

/**
 * Kernel command-line arguments, separated by spaces: the kernel, the installers that read
 * /proc/cmdline and the iPXE line that carries them all split on spaces, and none of them
 * escapes quotes, `$`, `;` or `|` the same way, so those are refused rather than escaped.
 */
function cmdline(value: unknown): string {
  const s = text(value);
  for (const arg of s.split(' ')) {
    if (arg === '') continue;
    if (!/^[\x21-\x7e]+$/.test(arg) || /["'\\`$;|<>]/.test(arg) || arg === '&&') {
      throw new FormatRefusal(`${shown(s)} cannot be written on a kernel command line: ${shown(arg)} holds a space, a quote, a control or non-ASCII character, or one of \\ \` $ ; | < > &&`);
    }
  }
  return s;
}

/**
 * A value in an iPXE script line: printable ASCII, no `${…}` (iPXE expands settings in every
 * argument, and has no way to escape `$`) and no `||`, `&&` or `;` word, which end a command.
 */
function ipxe(value: unknown): string {
  const s = text(value);
  if (!/^[\x20-\x7e]*$/.test(s) || s.includes('$') || s.split(' ').some((w) => w === '||' || w === '&&' || w === ';')) {
    throw new FormatRefusal(`${shown(s)} cannot be written into an iPXE script: it holds a control or non-ASCII character, a $, or a || && ; word`);
  }
  return s;
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
  shell_word: shellWord,
  kickstart: shellWord,
  yaml,
  line,
  preseed,
  cmdline,
  ipxe,
  required,
  debian_arch: debianArch,
  url_scheme: (value: unknown): string => parsedUrl(value).protocol.replace(/:$/, ''),
  url_host: (value: unknown): string => parsedUrl(value).host,
  url_path: (value: unknown): string => parsedUrl(value).pathname.replace(/\/+$/, '') || '/',
} satisfies Record<string, (value: unknown, ...args: unknown[]) => unknown>;

