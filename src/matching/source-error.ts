import { PlinthError } from '../core/errors.js';

/**
 * Where something sits in a source file. Lines and columns count from 1; a tab is one column,
 * so editors that jump to `file:line:column` land on the right character.
 */
export interface SourcePosition {
  line: number;
  column: number;
}

export interface SourceLocation extends SourcePosition {
  file?: string | undefined;
}

export function formatLocation(loc: SourceLocation): string {
  return `${loc.file ?? '<input>'}:${loc.line}:${loc.column}`;
}

/**
 * A file that cannot be read as the form it claims to be (a malformed `.specs`, `.cmdb`,
 * `state` or hardware list). The message is one line, `file:line:column: reason`, so the CLI
 * can print it as is and editors can jump to it.
 */
export class SourceError extends PlinthError {
  readonly file: string | undefined;
  readonly line: number;
  readonly column: number;
  readonly reason: string;

  constructor(reason: string, loc: SourceLocation) {
    super('validation', `${formatLocation(loc)}: ${reason}`, {
      details: { file: loc.file ?? null, line: loc.line, column: loc.column, reason },
    });
    this.name = 'SourceError';
    this.file = loc.file;
    this.line = loc.line;
    this.column = loc.column;
    this.reason = reason;
  }
}

export const isSourceError = (e: unknown): e is SourceError => e instanceof SourceError;
