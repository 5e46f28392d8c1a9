import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The layer table of docs/architecture.md. A module (a folder under src/, or a file directly
 * in src/) may import its own layer and the ones below; never a higher one, and modules of one
 * layer may not import each other in a circle. Type-only imports count too: they tie a module
 * to another's shape as much as a value import does, and a circle of types is still a circle.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['core'],
  ['config', 'protocol', 'matching', 'providers', 'build'],
  ['store', 'events'],
  ['inventory', 'runs', 'auth', 'health'],
  ['lifecycle'],
  ['appliances', 'power', 'profiles', 'images', 'installer', 'templates', 'lab', 'metrics', 'webhooks'],
  ['deploy', 'inspection', 'sources'],
  ['boot', 'dhcp', 'trees'],
  ['api'],
  ['controller', 'manager'],
  ['cli'],
];

/**
 * Islands stand outside the table: they import only what is listed, and nothing imports them.
 * The agent is bundled on its own into the installer (scripts/bundle-agent.mjs), so anything it
 * imports ships in the installer, and anything that imports it would tie the controller to it.
 */
const ISLANDS: Readonly<Record<string, readonly string[]>> = {
  agent: ['agent', 'core', 'protocol'],
};

/**
 * Imports known to break the rules, each with the reason it still stands. An entry is
 * `from -> to` (paths under src/); the test also fails when an entry no longer matches any
 * import, so the list only shrinks.
 */
const PENDING: Readonly<Record<string, string>> = {};

interface Edge {
  /** Importing file, relative to the scanned root. */
  from: string;
  /** Imported file, relative to the scanned root. */
  to: string;
}

/** A file's relative import specifiers: static imports and re-exports (type-only included), side-effect imports, import(). */
function importSpecifiers(source: string): string[] {
  // Comments that start a line are dropped, so that an example in a doc comment is not read
  // as an import; a string that merely contains `//` is left alone.
  const text = source.replace(/^\s*\/\*[\s\S]*?\*\//gm, '').replace(/^\s*\/\/.*$/gm, '');
  const specs: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^;'"]*?\sfrom\s*['"]([^'"]+)['"]/gm)) specs.push(m[1]!);
  for (const m of text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) specs.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) specs.push(m[1]!);
  return specs.filter((s) => s.startsWith('.'));
}

/** Every import between files under `root`, from its non-test sources. */
function readEdges(root: string): Edge[] {
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
  const edges: Edge[] = [];
  for (const file of walk(root).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      const to = relative(root, resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      edges.push({ from: relative(root, file), to });
    }
  }
  return edges;
}

/** `core/errors.ts` → `core`; `controller.ts` → `controller`. */
function moduleOf(file: string): string {
  const parts = file.split('/');
  return parts.length === 1 ? parts[0]!.replace(/\.ts$/, '') : parts[0]!;
}

/** Strongly connected components with more than one node (Tarjan), each sorted. */
function circles(nodes: Iterable<string>, next: (n: string) => string[]): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const n of nodes) if (!index.has(n)) visit(n);
  return found;
}

/**
 * What breaks the rules, one line per offending import (or per circle, with its imports).
 * Checked: modules missing from the table, islands, imports up the table, circles between
 * modules of one layer, and circles between files anywhere.
 */
function layerViolations(
  edges: readonly Edge[],
  layers: readonly (readonly string[])[] = LAYERS,
  islands: Readonly<Record<string, readonly string[]>> = ISLANDS,
): string[] {
  const layerOf = new Map<string, number>();
  layers.forEach((mods, i) => mods.forEach((m) => layerOf.set(m, i)));
  const problems: string[] = [];
  const show = (e: Edge): string => `${e.from} -> ${e.to}`;

  for (const e of edges) {
    const a = moduleOf(e.from);
    const b = moduleOf(e.to);
    if (a === b) continue;
    if (islands[a]) {
      if (!islands[a]!.includes(b)) problems.push(`${show(e)}: ${a}/ may import only ${islands[a]!.join(', ')}`);
      continue;
    }
    if (islands[b]) {
      problems.push(`${show(e)}: nothing outside ${b}/ may import it`);
      continue;
    }
    const la = layerOf.get(a);
    const lb = layerOf.get(b);
    if (la === undefined || lb === undefined) {
      problems.push(`${show(e)}: ${la === undefined ? a : b} has no place in the layer table`);
      continue;
    }
    if (lb > la) problems.push(`${show(e)}: ${a} (layer ${la}) imports ${b} (layer ${lb}), which is higher`);
  }

  // Circles between modules of one layer (imports up the table are reported above already).
  const sameLayer = edges.filter((e) => {
    const a = moduleOf(e.from);
    const b = moduleOf(e.to);
    return a !== b && layerOf.has(a) && layerOf.get(a) === layerOf.get(b);
  });
  const moduleNext = (m: string): string[] => [...new Set(sameLayer.filter((e) => moduleOf(e.from) === m).map((e) => moduleOf(e.to)))];
  for (const circle of circles(new Set(sameLayer.map((e) => moduleOf(e.from))), moduleNext)) {
    const inside = sameLayer.filter((e) => circle.includes(moduleOf(e.from)) && circle.includes(moduleOf(e.to)));
    problems.push(`circle between modules ${circle.join(', ')}: ${inside.map(show).join('; ')}`);
  }

  // Circles between files, inside a module or across modules.
  const fileNext = (f: string): string[] => edges.filter((e) => e.from === f).map((e) => e.to);
  for (const circle of circles(new Set(edges.map((e) => e.from)), fileNext)) {
    const inside = edges.filter((e) => circle.includes(e.from) && circle.includes(e.to));
    problems.push(`circle between files ${circle.join(', ')}: ${inside.map(show).join('; ')}`);
  }
  return problems;
}

describe('layers', () => {
  const edges = readEdges(fileURLToPath(new URL('.', import.meta.url)));

  it('reads the imports of src/ (the scan sees the files it should)', () => {
    // A parser that silently found nothing would pass every rule below.
    expect(edges.length).toBeGreaterThan(500);
    expect(edges).toContainEqual({ from: 'controller.ts', to: 'api/app.ts' });
    expect(edges).toContainEqual({ from: 'agent/main.ts', to: 'agent/agent.ts' });
  });

  it('no import runs up the layer table, leaves an island or forms a circle', () => {
    const pending = new Set(Object.keys(PENDING));
    const problems = layerViolations(edges).filter((p) => ![...pending].some((k) => p.startsWith(`${k}:`)));
    expect(problems).toEqual([]);
  });

  it('every pending exception still names an import that exists', () => {
    const present = new Set(edges.map((e) => `${e.from} -> ${e.to}`));
    expect(Object.keys(PENDING).filter((k) => !present.has(k))).toEqual([]);
  });

  it('places every module of src/ in the table or among the islands', () => {
    const placed = new Set([...LAYERS.flat(), ...Object.keys(ISLANDS)]);
    const modules = new Set(edges.flatMap((e) => [moduleOf(e.from), moduleOf(e.to)]));
    expect([...modules].filter((m) => !placed.has(m))).toEqual([]);
  });
});

describe('the layer check itself', () => {
  const table = [['core'], ['store', 'runs'], ['api']];
  const islands = { agent: ['agent', 'core'] };
  const clean: Edge[] = [
    { from: 'api/app.ts', to: 'store/db.ts' },
    { from: 'store/db.ts', to: 'core/ids.ts' },
    { from: 'runs/runs.ts', to: 'store/db.ts' },
    { from: 'agent/main.ts', to: 'core/ids.ts' },
  ];

  it('passes a graph that keeps the rules', () => {
    expect(layerViolations(clean, table, islands)).toEqual([]);
  });

  it('fails on an import up the table, naming it', () => {
    const problems = layerViolations([...clean, { from: 'store/db.ts', to: 'api/app.ts' }], table, islands);
    expect(problems).toEqual([
      'store/db.ts -> api/app.ts: store (layer 1) imports api (layer 2), which is higher',
      'circle between files api/app.ts, store/db.ts: api/app.ts -> store/db.ts; store/db.ts -> api/app.ts',
    ]);
  });

  it('fails on a circle between two modules of one layer, listing its imports', () => {
    const problems = layerViolations([...clean, { from: 'store/db.ts', to: 'runs/runs.ts' }], table, islands);
    expect(problems).toEqual([
      'circle between modules runs, store: runs/runs.ts -> store/db.ts; store/db.ts -> runs/runs.ts',
      'circle between files runs/runs.ts, store/db.ts: runs/runs.ts -> store/db.ts; store/db.ts -> runs/runs.ts',
    ]);
  });

  it('fails on a circle between files of one module', () => {
    const problems = layerViolations([...clean, { from: 'store/db.ts', to: 'store/migrations/1.ts' }, { from: 'store/migrations/1.ts', to: 'store/db.ts' }], table, islands);
    expect(problems).toEqual([
      'circle between files store/db.ts, store/migrations/1.ts: store/db.ts -> store/migrations/1.ts; store/migrations/1.ts -> store/db.ts',
    ]);
  });

  it('keeps an island to its list, and everyone else out of it', () => {
    const problems = layerViolations([...clean, { from: 'agent/main.ts', to: 'store/db.ts' }, { from: 'api/app.ts', to: 'agent/steps.ts' }], table, islands);
    expect(problems).toEqual([
      'agent/main.ts -> store/db.ts: agent/ may import only agent, core',
      'api/app.ts -> agent/steps.ts: nothing outside agent/ may import it',
    ]);
  });

  it('fails on a module the table does not place', () => {
    expect(layerViolations([...clean, { from: 'api/app.ts', to: 'extras/x.ts' }], table, islands)).toEqual([
      'api/app.ts -> extras/x.ts: extras has no place in the layer table',
    ]);
  });

  it('reads type-only, multi-line, re-export, side-effect and dynamic imports, and skips comments and packages', () => {
    const source = [
      "import type { A } from './a.js';",
      'import {',
      '  b,',
      '  type C,',
      "} from '../b.js';",
      "export * from './c.js';",
      "export { d } from './d.js';",
      "import './e.js';",
      "const f = await import('./f.js');",
      "import { g } from 'node:fs';",
      "// import { h } from './h.js';",
      '/**',
      " * import { i } from './i.js';",
      ' */',
    ].join('\n');
    expect(importSpecifiers(source).sort()).toEqual(['../b.js', './a.js', './c.js', './d.js', './e.js', './f.js']);
  });
});
