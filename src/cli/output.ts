/** How the CLI prints: JSON for scripts (`--json`), aligned tables for people. */
export interface Output {
  json(value: unknown): void;
  table(rows: Record<string, unknown>[], columns: string[]): void;
  line(text: string): void;
  error(text: string): void;
}

const cell = (v: unknown): string => (v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v));

export function formatTable(rows: Record<string, unknown>[], columns: string[]): string {
  const head = columns.map((c) => c.toUpperCase());
  const body = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(head), ...body.map(fmt)].join('\n') + '\n';
}

export function streamOutput(stdout: NodeJS.WritableStream = process.stdout, stderr: NodeJS.WritableStream = process.stderr): Output {
  return {
    json: (v) => stdout.write(JSON.stringify(v, null, 2) + '\n'),
    table: (rows, columns) => stdout.write(formatTable(rows, columns)),
    line: (t) => stdout.write(t + '\n'),
    error: (t) => stderr.write(t + '\n'),
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
