import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ensureDebianPackages } from './peers/debian-packages.js';

/**
 * Scraped metrics read back by the Prometheus project's own parser of the text format
 * (`prometheus_client.parser`, Debian's python3-prometheus-client), so a malformed exposition
 * fails the test. The npm parsers tried lose the labels of histogram series.
 */
const PYTHON = '/usr/bin/python3';
const PARSER = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]})
json.dump(out, sys.stdout, allow_nan=False)
`;

export interface Sample {
  /** The series name: the family's, or with _bucket, _sum, _count (histograms), _total (counters). */
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  /** The family name (a counter's without `_total`). */
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'unknown';
  help: string;
  samples: Sample[];
}

export function parsePrometheus(text: string): Family[] {
  ensureDebianPackages(['python3-prometheus-client'], () => existsSync('/usr/lib/python3/dist-packages/prometheus_client/parser.py'));
  // JSON has no NaN or Inf (a process metric may be NaN): those come as text.
  const json = execFileSync(PYTHON, ['-c', PARSER], { input: text, encoding: 'utf8', maxBuffer: 64 << 20 });
  const families = JSON.parse(json) as Family[];
  for (const f of families) for (const s of f.samples) s.value = Number(s.value);
  return families;
}

const matches = (s: Sample, labels: Record<string, string>) => Object.entries(labels).every(([k, v]) => s.labels[k] === v);

/** The value of series `name` whose labels include `labels` (0 when it does not exist yet). */
export function valueOf(families: Family[], name: string, labels: Record<string, string> = {}): number {
  for (const f of families) for (const s of f.samples) if (s.name === name && matches(s, labels)) return s.value;
  return 0;
}

/** Whether any series `name` has labels including `labels`. */
export const hasSeries = (families: Family[], name: string, labels: Record<string, string> = {}): boolean =>
  families.some((f) => f.samples.some((s) => s.name === name && matches(s, labels)));
