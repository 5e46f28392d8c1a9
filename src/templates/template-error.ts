import { PlinthError } from '../core/errors.js';

/**
 * Where a template problem is. `template` is what was being rendered or checked
 * (`cloud-init/user-data`); `snippet` is set when the problem is inside a snippet that template
 * included (`cloud-init/network`), and then line and column count in the snippet.
 */
export interface TemplateLocation {
  template: string;
  snippet?: string | undefined;
  line: number | null;
  column: number | null;
}

/**
 * A template that cannot be parsed or rendered: an unknown variable or filter, a syntax error,
 * a missing snippet, a value a filter refuses. The message is one line that starts with
 * `kind/name:line:column:`, so the CLI can print it as is and editors can jump to it.
 */
export class TemplateError extends PlinthError {
  readonly template: string;
  readonly snippet: string | undefined;
  readonly line: number | null;
  readonly column: number | null;
  readonly reason: string;

  constructor(reason: string, where: TemplateLocation, options: { cause?: unknown } = {}) {
    const file = where.snippet ?? where.template;
    const position = where.line === null ? '' : `:${where.line}:${where.column ?? 1}`;
    const includedBy = where.snippet === undefined ? '' : ` (included by ${where.template})`;
    super('validation', `${file}${position}: ${reason}${includedBy}`, {
      details: {
        template: where.template,
        ...(where.snippet === undefined ? {} : { snippet: where.snippet }),
        line: where.line,
        column: where.column,
        reason,
      },
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
    this.name = 'TemplateError';
    this.template = where.template;
    this.snippet = where.snippet;
    this.line = where.line;
    this.column = where.column;
    this.reason = reason;
  }
}

export const isTemplateError = (e: unknown): e is TemplateError => e instanceof TemplateError;
