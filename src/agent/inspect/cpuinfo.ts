import { nonEmpty, parseKeyValueLines } from './key-value.js';

/** The little /proc/cpuinfo can tell when lscpu is missing from the installer. */
export interface CpuinfoSummary {
  logicalCpus: number;
  /** x86 "model name"; null on architectures that print none (aarch64). */
  modelName: string | null;
  vendorId: string | null;
}

export function parseCpuinfo(text: string): CpuinfoSummary {
  const logicalCpus = text.split('\n').filter((line) => /^processor\s*:/.test(line)).length;
  const f = parseKeyValueLines(text);
  return { logicalCpus, modelName: nonEmpty(f.get('model name')), vendorId: nonEmpty(f.get('vendor_id')) };
}
