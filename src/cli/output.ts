/** How the CLI prints: JSON for scripts (`--json`), aligned tables for people. */
export interface Output {
  json(value: unknown): void;
  table(rows: Record<string, unknown>[], columns: string[]): void;
  line(text: string): void;
  error(text: string): void;
}

/**
 * Characters a terminal acts on instead of showing: C0 controls (ESC starts colour, cursor
 * and title sequences; CR and BS overwrite what is shown), DEL, C1 controls (U+009B is a
 * one-character CSI) and the bidirectional overrides that reorder a line. Names, serials,
 * facts and errors come from machines and from anyone on the provisioning network: they are
 * printed as visible escapes, never passed to the terminal.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const hex = (c: string, width: number) => c.charCodeAt(0).toString(16).padStart(width, '0');

/**
 * `text` with every terminal control shown as an escape; characters in `keep` (the line
 * breaks of a multi-line page) pass. C0 controls print as `\x1b`; the others as `\u009b`,
 * which is also a JSON escape of the same character: JSON.stringify leaves DEL, C1 and the
 * bidi controls raw (and escapes C0 itself), so a JSON document passed through here is still
 * the same JSON value.
 */
export function terminalText(text: string, keep = ''): string {
  return text.replace(UNSAFE, (c) => (keep.includes(c) ? c : (NAMED[c] ?? (c < ' ' ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`))));
}

const cell = (v: unknown): string => terminalText(v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v));

export function formatTable(rows: Record<string, unknown>[], columns: string[]): string {
  const head = columns.map((c) => c.toUpperCase());
  const body = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(head), ...body.map(fmt)].join('\n') + '\n';
}

export function streamOutput(stdout: NodeJS.WritableStream = process.stdout, stderr: NodeJS.WritableStream = process.stderr): Output {
  return {
    json: (v) => stdout.write(terminalText(JSON.stringify(v, null, 2), '\n') + '\n'),
    table: (rows, columns) => stdout.write(formatTable(rows, columns)),
    // Lines keep their breaks and tabs (pages, rendered templates); every other control is shown escaped.
    line: (t) => stdout.write(terminalText(t, '\n\t') + '\n'),
    error: (t) => stderr.write(terminalText(t, '\n\t') + '\n'),
  };
}

/**
 * Resolves once everything written to `stream` so far has left the process. Writes to a pipe
 * are queued when the reader is slower than the writer (a listing larger than the pipe's
 * 64 KiB buffer): exiting before this resolves loses the tail of the output.
 */
export function flushed(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    if ((stream as { destroyed?: boolean }).destroyed) return resolve();
    // The callback of an empty write runs after every earlier write, or with the error that ended the stream.
    stream.write('', () => resolve());
  });
}

/**
 * A reader that goes away (`plinth machine list | head`) makes further writes fail with
 * EPIPE: that is the reader's choice, not an error of the command, so the process ends
 * quietly with `code` instead of printing a stack trace.
 */
export function exitQuietlyOnEpipe(stream: NodeJS.WritableStream, exit: () => void): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') exit();
    else throw err;
  });
}
