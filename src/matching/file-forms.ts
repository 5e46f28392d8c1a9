import { readFile } from 'node:fs/promises';
import type { HwTuple } from '../core/facts.js';
import type { CmdbEntry } from './cmdb.js';
import { expandModel, type GenerateOptions } from './generate.js';
import { parseJsonLiteral } from './json-literal.js';
import { describeNode, type LiteralNode } from './literal-ast.js';
import type { StateEntry } from './profiles.js';
import { parsePythonLiteral } from './python-literal.js';
import { parsePyInt } from './python-numbers.js';
import { literalToValue, nodeScalarText, PyTuple, type PyDict } from './python-values.js';
import { formatPython } from './python-writer.js';
import { SourceError } from './source-error.js';
import type { SpecRule } from './spec-rules.js';
import { parseYamlLiteral } from './yaml-literal.js';

/**
 * The file forms eDeploy and Plinth exchange, read into checked data:
 * - spec lists (`.specs`) and hardware lists (`.hw`): Python literal, or JSON, a list of
 *   4-element lists. Hardware values become strings at ingestion (decision 8), and so do
 *   spec values written as numbers;
 * - CMDBs (`.cmdb`): Python literal (a list of dicts, or `generate({...})`), or JSON/YAML (a
 *   list, or `{"$generate": {...}}`); `{"$const": ...}` marks a value copied unchanged;
 * - `state`: a list of `(profile, count)`, Python literal or JSON.
 * Every defect is reported as a SourceError naming the file, line and column.
 */

export type SourceFormat = 'python' | 'json' | 'yaml';

export interface ReadOptions {
  /** Named in errors. */
  file?: string | undefined;
  /** Defaults to the form the file name suggests (see formatForPath). */
  format?: SourceFormat | undefined;
}

/** `.json` is JSON, `.yaml`/`.yml` YAML, anything else (`.specs`, `.cmdb`, `.hw`, `state`) Python. */
export function formatForPath(path: string): SourceFormat {
  const lower = path.toLowerCase();
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.yaml') || lower.endsWith('.yml')) return 'yaml';
  return 'python';
}

function formatOf(options: ReadOptions): SourceFormat {
  return options.format ?? (options.file ? formatForPath(options.file) : 'python');
}

/** Parses text of any supported form into the shared syntax tree. */
export function parseSource(text: string, options: ReadOptions = {}): LiteralNode {
  const file = options.file;
  switch (formatOf(options)) {
    case 'json':
      return parseJsonLiteral(text, { file });
    case 'yaml':
      return parseYamlLiteral(text, { file });
    case 'python':
      return parsePythonLiteral(text, { file });
  }
}

function fail(reason: string, node: LiteralNode, file: string | undefined): never {
  throw new SourceError(reason, { file, ...node.pos });
}

function sequenceItems(node: LiteralNode): LiteralNode[] | null {
  return node.kind === 'list' || node.kind === 'tuple' ? node.items : null;
}

function readTuples(root: LiteralNode, file: string | undefined, what: string): { tuple: HwTuple; node: LiteralNode }[] {
  const items = sequenceItems(root);
  if (!items) fail(`${what} must be a list of 4-element tuples, found ${describeNode(root)}`, root, file);
  return items.map((item, i) => {
    const fields = sequenceItems(item);
    if (!fields) fail(`${what} item ${i + 1} must be a 4-element tuple, found ${describeNode(item)}`, item, file);
    if (fields.length !== 4) fail(`${what} item ${i + 1} has ${fields.length} elements, 4 are expected`, item, file);
    const tuple = fields.map((f) => {
      const text = nodeScalarText(f);
      if (text === null) fail(`${what} values must be strings or numbers, found ${describeNode(f)}`, f, file);
      return text;
    }) as HwTuple;
    return { tuple, node: item };
  });
}

/** Reads a spec list; each rule keeps the position of its tuple for explanations. */
export function readSpecsText(text: string, options: ReadOptions = {}): SpecRule[] {
  const root = parseSource(text, options);
  return readTuples(root, options.file, 'a spec list').map(({ tuple, node }) => ({
    tuple,
    at: { file: options.file, ...node.pos },
  }));
}

/** Reads a hardware list, every value as its string form (decision 8). */
export function readHwText(text: string, options: ReadOptions = {}): HwTuple[] {
  const root = parseSource(text, options);
  return readTuples(root, options.file, 'a hardware list').map(({ tuple }) => tuple);
}

export interface CmdbSource {
  /** `generate`: the file holds a model (`generate({...})` or `{"$generate": {...}}`). */
  form: 'list' | 'generate';
  /** The entries: the list as written, or the model expanded. */
  entries: CmdbEntry[];
  model?: PyDict;
}

function readEntries(root: LiteralNode, file: string | undefined): CmdbEntry[] {
  const items = sequenceItems(root)!;
  return items.map((item, i) => {
    if (item.kind !== 'dict') fail(`CMDB entry ${i + 1} must be a dict, found ${describeNode(item)}`, item, file);
    return literalToValue(item, file) as PyDict;
  });
}

function modelOf(node: LiteralNode, file: string | undefined): PyDict {
  if (node.kind !== 'dict') fail(`a CMDB model must be a dict, found ${describeNode(node)}`, node, file);
  return literalToValue(node, file) as PyDict;
}

/** Reads a CMDB in any of its forms; a model is expanded. */
export function readCmdbText(text: string, options: ReadOptions & GenerateOptions = {}): CmdbSource {
  const file = options.file;
  const root = parseSource(text, options);
  if (root.kind === 'list' || root.kind === 'tuple') return { form: 'list', entries: readEntries(root, file) };
  let model: PyDict;
  if (root.kind === 'call') {
    if (root.args.length !== 1) fail(`generate() takes one dict argument, got ${root.args.length}`, root, file);
    model = modelOf(root.args[0]!, file);
  } else if (root.kind === 'dict' && root.entries.length === 1 && root.entries[0]!.key.kind === 'str' && root.entries[0]!.key.value === '$generate') {
    model = modelOf(root.entries[0]!.value, file);
  } else {
    return fail(`a CMDB must be a list of entries or a generate model, found ${describeNode(root)}`, root, file);
  }
  try {
    return { form: 'generate', entries: expandModel(model, options), model };
  } catch (e) {
    if (e instanceof Error && !(e instanceof SourceError)) fail(e.message, root, file);
    throw e;
  }
}

/** Reads `state`, checking each count is an int, a numeric string or `'*'`. */
export function readStateText(text: string, options: ReadOptions = {}): StateEntry[] {
  const file = options.file;
  const root = parseSource(text, options);
  const items = sequenceItems(root);
  if (!items) fail(`state must be a list of (profile, count) tuples, found ${describeNode(root)}`, root, file);
  return items.map((item, i) => {
    const pair = sequenceItems(item);
    if (!pair || pair.length !== 2) fail(`state item ${i + 1} must be a (profile, count) pair`, item, file);
    const [name, count] = pair as [LiteralNode, LiteralNode];
    if (name.kind !== 'str') fail(`a profile name must be a string, found ${describeNode(name)}`, name, file);
    const profile = (name as { value: string }).value;
    switch (count.kind) {
      case 'int':
        return { profile, count: Number(count.value) };
      case 'float':
        if (!Number.isFinite(count.value)) break;
        return { profile, count: count.value };
      case 'str':
        if (count.value === '*' || parsePyInt(count.value) !== null) return { profile, count: count.value };
        break;
    }
    return fail(`the count of '${profile}' must be an integer, a numeric string or '*'`, count, file);
  });
}

/** `state` as eDeploy writes it: `pprint` of a list of tuples. */
export function formatState(state: readonly StateEntry[]): string {
  return formatPython(state.map((e) => new PyTuple([e.profile, e.count])));
}

/** A CMDB as eDeploy writes it after an allocation: `pprint` of the expanded list. */
export function formatCmdb(entries: readonly CmdbEntry[]): string {
  return formatPython([...entries]);
}

async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8');
}

export async function readSpecsFile(path: string, format?: SourceFormat): Promise<SpecRule[]> {
  return readSpecsText(await readText(path), { file: path, format });
}

export async function readHwFile(path: string, format?: SourceFormat): Promise<HwTuple[]> {
  return readHwText(await readText(path), { file: path, format });
}

export async function readCmdbFile(path: string, options: { format?: SourceFormat } & GenerateOptions = {}): Promise<CmdbSource> {
  return readCmdbText(await readText(path), { ...options, file: path });
}

export async function readStateFile(path: string, format?: SourceFormat): Promise<StateEntry[]> {
  return readStateText(await readText(path), { file: path, format });
}
