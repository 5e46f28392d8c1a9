import type { SourcePosition } from './source-error.js';

/**
 * The syntax tree shared by the Python-literal, JSON and YAML readers: eDeploy files are
 * checked and converted from this tree, never evaluated. Tuples stay distinct from lists
 * (a `state` entry is written back as a tuple), integers keep their exact value as bigint
 * (a hardware list may carry 64-bit counters whose string form must not be rounded), and
 * `generate({...})` is a call node of its own.
 */
export type LiteralNode =
  | { kind: 'str'; value: string; pos: SourcePosition }
  | { kind: 'int'; value: bigint; pos: SourcePosition }
  | { kind: 'float'; value: number; pos: SourcePosition }
  | { kind: 'bool'; value: boolean; pos: SourcePosition }
  | { kind: 'none'; pos: SourcePosition }
  | { kind: 'list'; items: LiteralNode[]; pos: SourcePosition }
  | { kind: 'tuple'; items: LiteralNode[]; pos: SourcePosition }
  | { kind: 'dict'; entries: DictEntryNode[]; pos: SourcePosition }
  | { kind: 'call'; name: string; args: LiteralNode[]; pos: SourcePosition };

export interface DictEntryNode {
  key: LiteralNode;
  value: LiteralNode;
}

export type LiteralKind = LiteralNode['kind'];

/** How a node is named in error messages. */
export function describeNode(node: LiteralNode): string {
  switch (node.kind) {
    case 'str':
      return 'a string';
    case 'int':
      return 'an integer';
    case 'float':
      return 'a float';
    case 'bool':
      return node.value ? 'True' : 'False';
    case 'none':
      return 'None';
    case 'list':
      return 'a list';
    case 'tuple':
      return 'a tuple';
    case 'dict':
      return 'a dict';
    case 'call':
      return `a call to ${node.name}()`;
  }
}
