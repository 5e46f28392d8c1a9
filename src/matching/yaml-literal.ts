import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { DictEntryNode, LiteralNode } from './literal-ast.js';
import { SourceError, type SourcePosition } from './source-error.js';

/**
 * Reads YAML (CMDB models written for Plinth rather than for eDeploy) into the same syntax
 * tree as the Python-literal and JSON readers, keeping positions so later checks can name
 * the line and column of a bad value.
 */

const MAX_DEPTH = 200;

export function parseYamlLiteral(text: string, options: { file?: string | undefined } = {}): LiteralNode {
  const file = options.file;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const problem = doc.errors[0];
  if (problem) {
    const at = problem.linePos?.[0] ?? lines.linePos(problem.pos[0]);
    throw new SourceError(problem.message.split('\n')[0]!, { file, line: at.line, column: at.col });
  }
  const posOf = (node: YamlNode | null | undefined): SourcePosition => {
    const at = lines.linePos(node?.range?.[0] ?? 0);
    return { line: at.line, column: at.col };
  };
  const fail = (reason: string, node: YamlNode | null | undefined): never => {
    throw new SourceError(reason, { file, ...posOf(node) });
  };
  if (doc.contents === null) return fail('empty file: expected a YAML value', null);
  return convert(doc.contents as YamlNode, doc, text, 0, posOf, fail);
}

function convert(
  node: YamlNode,
  doc: Document,
  text: string,
  depth: number,
  posOf: (n: YamlNode) => SourcePosition,
  fail: (reason: string, n: YamlNode) => never,
): LiteralNode {
  if (depth > MAX_DEPTH) return fail(`nesting deeper than ${MAX_DEPTH} levels`, node);
  const pos = posOf(node);
  if (isAlias(node)) {
    const target = node.resolve(doc);
    if (!target) return fail(`unresolved alias *${node.source}`, node);
    return convert(target as YamlNode, doc, text, depth + 1, posOf, fail);
  }
  if (isSeq(node)) {
    return { kind: 'list', items: node.items.map((item) => convert(item as YamlNode, doc, text, depth + 1, posOf, fail)), pos };
  }
  if (isMap(node)) {
    const entries: DictEntryNode[] = [];
    for (const pair of node.items) {
      const keyNode = pair.key as YamlNode | null;
      if (!keyNode || !isScalar(keyNode)) return fail('only scalar mapping keys are supported', keyNode ?? node);
      const key = typeof keyNode.value === 'string' ? keyNode.value : sourceOf(keyNode, text);
      const valueNode = pair.value as YamlNode | null;
      const value: LiteralNode = valueNode ? convert(valueNode, doc, text, depth + 1, posOf, fail) : { kind: 'none', pos: posOf(keyNode) };
      entries.push({ key: { kind: 'str', value: key, pos: posOf(keyNode) }, value });
    }
    return { kind: 'dict', entries, pos };
  }
  if (isScalar(node)) {
    const v = node.value;
    if (typeof v === 'string') return { kind: 'str', value: v, pos };
    if (typeof v === 'boolean') return { kind: 'bool', value: v, pos };
    if (v === null || v === undefined) return { kind: 'none', pos };
    if (typeof v === 'bigint') return { kind: 'int', value: v, pos };
    if (typeof v === 'number') {
      const src = sourceOf(node, text);
      if (Number.isInteger(v) && /^[-+]?[0-9]+$/.test(src)) return { kind: 'int', value: BigInt(src), pos };
      if (Number.isInteger(v) && /^[-+]?0[xo][0-9a-fA-F]+$/.test(src)) return { kind: 'int', value: BigInt(v), pos };
      return { kind: 'float', value: v, pos };
    }
    return fail(`unsupported YAML value of type ${typeof v}`, node);
  }
  return fail('unsupported YAML node', node);
}

function sourceOf(node: YamlNode, text: string): string {
  const range = node.range;
  return range ? text.slice(range[0], range[1]).trim() : '';
}
