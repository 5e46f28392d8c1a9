import { isMap, isPair, isScalar, isSeq, parseDocument, type Pair, type YAMLMap } from 'yaml';

/**
 * cloud-config documents are assembled from snippets, and two snippets may both set a key —
 * an override of `packages` that adds `runcmd:` next to the built-in completion report's.
 * YAML leaves a repeated key to the reader (cloud-init keeps the last one, so the other's
 * commands silently never run), so a rendered `#cloud-config` document is parsed and its
 * repeated keys merged, at every depth, before it is stored or served:
 *
 * - two lists are concatenated, in the order they were written (`runcmd`, `packages`,
 *   `write_files`, autoinstall's `late-commands`);
 * - two maps are merged key by key, by these same rules;
 * - two equal scalars are kept once;
 * - anything else (two different scalars, a list and a map) cannot be merged without losing
 *   one of them, and is refused, naming the key.
 *
 * A document without repeated keys is returned byte for byte; one with them is written back by
 * the `yaml` library, keeping comments, the `#cloud-config` header, block scalars and flow lists
 * as they were written.
 */
export function mergeCloudConfig(text: string): string {
  const doc = parseDocument(text, { uniqueKeys: false, keepSourceTokens: false });
  const error = doc.errors[0];
  if (error) {
    const line = error.linePos?.[0]?.line;
    throw new CloudConfigError(`the rendered document is not valid YAML${line ? ` (at its line ${line})` : ''}: ${error.message.split('\n')[0]}`);
  }
  if (!isMap(doc.contents)) return text;
  if (!mergeMap(doc.contents, [])) return text;
  return doc.toString({ lineWidth: 0 });
}

export const isCloudConfig = (text: string): boolean => text.startsWith('#cloud-config');

/** A repeated key that cannot be merged, or a document that is not YAML. */
export class CloudConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CloudConfigError';
  }
}

/** Merges repeated keys of `map` in place, recursively; true when anything changed. */
function mergeMap(map: YAMLMap, path: string[]): boolean {
  let changed = false;
  const firstByKey = new Map<string, Pair>();
  const kept: unknown[] = [];
  for (const item of map.items) {
    if (!isPair(item)) {
      kept.push(item);
      continue;
    }
    const key = keyText(item.key);
    const first = firstByKey.get(key);
    if (first === undefined) {
      firstByKey.set(key, item);
      kept.push(item);
      continue;
    }
    changed = true;
    const where = [...path, key].join('.');
    const a = first.value;
    const b = item.value;
    if (isSeq(a) && isSeq(b)) a.items.push(...b.items);
    else if (isMap(a) && isMap(b)) a.items.push(...b.items);
    else if (isScalar(a) && isScalar(b) && JSON.stringify(a.toJSON()) === JSON.stringify(b.toJSON())) {
      // The same value twice: kept once.
    } else if ((a === null || (isScalar(a) && a.value === null)) && b !== null) first.value = b;
    else if (b === null || (isScalar(b) && b.value === null)) {
      // An empty repetition adds nothing.
    } else throw new CloudConfigError(`'${where}' is set twice with values that cannot be merged (lists are concatenated, maps merged, equal values kept once)`);
  }
  map.items = kept as YAMLMap['items'];
  for (const item of map.items) {
    if (!isPair(item)) continue;
    if (isMap(item.value) && mergeMap(item.value, [...path, keyText(item.key)])) changed = true;
  }
  return changed;
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}
