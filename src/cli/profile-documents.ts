import { readFileSync } from 'node:fs';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Scalar, type Node as YamlNode } from 'yaml';
import { PlinthError } from '../core/errors.js';
import { ApiError } from '../api/client.js';
import type { Output } from './output.js';
import { ExitCode } from './errors.js';

/**
 * Profile and pool files (YAML, or JSON, which YAML reads too): one item, a list of items,
 * or `{ pools: [...], profiles: [...] }`. The controller checks them; when it names a field
 * (`profiles[1].deploy.image`), that field is found again in the file so the error points at
 * its line and column, the way an editor wants it.
 */

export type DocumentKind = 'profiles' | 'pools';

export interface LoadedDocument {
  file: string;
  body: { profiles?: unknown[]; pools?: unknown[] };
  /** The file position of a field named as the API names it, or null. */
  locate(field: string): { line: number; column: number } | null;
}

/** A document that cannot be used: printed as `file:line:column: reason`, exit 2. */
export class DocumentError extends Error {}

type Root = { form: 'list' | 'single' | 'sections'; node: YamlNode };

export function readDocumentFile(file: string, kind: DocumentKind): LoadedDocument {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DocumentError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const problem = doc.errors[0];
  if (problem) {
    const at = problem.linePos?.[0] ?? lines.linePos(problem.pos[0]);
    throw new DocumentError(`${file}:${at.line}:${at.col}: ${problem.message.split('\n')[0]}`);
  }
  const contents = doc.contents as YamlNode | null;
  if (!contents) throw new DocumentError(`${file}:1:1: empty document`);
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  let root: Root;
  let body: LoadedDocument['body'];
  if (isSeq(contents)) {
    root = { form: 'list', node: contents };
    body = { [kind]: value as unknown[] };
  } else if (isMap(contents) && (contents.has('profiles') || contents.has('pools')) && !contents.has('name')) {
    root = { form: 'sections', node: contents };
    body = value as LoadedDocument['body'];
    if (kind === 'pools' && body.profiles !== undefined) throw new DocumentError(`${file}: a pools file cannot carry profiles (use plinth profile apply)`);
  } else if (isMap(contents)) {
    root = { form: 'single', node: contents };
    body = { [kind]: [value] };
  } else {
    const at = lines.linePos(contents.range?.[0] ?? 0);
    throw new DocumentError(`${file}:${at.line}:${at.col}: expected a ${kind === 'profiles' ? 'profile' : 'pool'}, a list of them, or { pools: [...], profiles: [...] }`);
  }
  return { file, body, locate: (field) => locateField(lines, root, field) };
}

function segmentsOf(field: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}

function locateField(lines: LineCounter, root: Root, field: string): { line: number; column: number } | null {
  const segs = segmentsOf(field);
  let node: YamlNode | null = null;
  let rest: (string | number)[];
  const [section, index] = segs;
  if (root.form === 'sections') {
    node = root.node;
    rest = segs;
  } else if ((section === 'profiles' || section === 'pools') && typeof index === 'number') {
    node = root.form === 'list' ? ((root.node as { items: YamlNode[] }).items[index] ?? null) : index === 0 ? root.node : null;
    rest = segs.slice(2);
  } else if (section === 'body' && root.form === 'single') {
    node = root.node;
    rest = segs.slice(1);
  } else return null;
  let at: YamlNode | null = node;
  for (const seg of rest) {
    if (!at) break;
    if (isMap(at) && typeof seg === 'string') {
      const pair = at.items.find((p) => isPair(p) && isScalar(p.key) && String((p.key as Scalar).value) === seg);
      if (!pair) break;
      // The last segment points at its key (an unknown field is best shown where it is named).
      at = seg === rest[rest.length - 1] ? (pair.key as YamlNode) : ((pair.value as YamlNode | null) ?? (pair.key as YamlNode));
    } else if (isSeq(at) && typeof seg === 'number') {
      const item = at.items[seg] as YamlNode | undefined;
      if (!item) break;
      at = item;
    } else break;
  }
  if (!at?.range) return null;
  const pos = lines.linePos(at.range[0]);
  return { line: pos.line, column: pos.col };
}

/**
 * Prints what the controller said about a document: with its file position when the error
 * names a field of the file. Rejected documents end with exit 2, conflicts with exit 1.
 */
export function reportDocumentError(out: Output, doc: LoadedDocument, e: unknown): never {
  if (e instanceof DocumentError) {
    out.error(`plinth: ${e.message}`);
    throw new ExitCode(2);
  }
  if (!(e instanceof PlinthError)) throw e;
  const field = typeof e.details?.field === 'string' ? e.details.field : null;
  const at = field ? doc.locate(field) : null;
  out.error(`plinth: ${at ? `${doc.file}:${at.line}:${at.column}: ` : `${doc.file}: `}${e.message}`);
  // The controller refused the document (400), or a check here did before sending it.
  const rejected = e instanceof ApiError ? e.status === 400 : e.code === 'validation' || e.code === 'bad_request';
  throw new ExitCode(rejected ? 2 : 1);
}
