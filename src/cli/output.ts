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
