/**
 * Compares the machines of one profile (the same hardware, so the same figures are
 * expected): for each figure, the median over the machines and the median absolute
 * deviation (MAD, scaled by 1.4826 so that it estimates a standard deviation for normal
 * noise). A machine is an outlier on a figure when its value is below
 * `median − k·MAD` **and** more than `minDrop` (a fraction) below the median: the first
 * rule is robust to the outliers themselves (unlike mean and standard deviation), the
 * second keeps identical machines with tiny noise (MAD ≈ 0) from being flagged for a 1 %
 * wobble. Every health figure is higher-is-better, so only the low side is flagged. With
 * fewer than three machines no value can be told from its peers: nothing is flagged.
 */
export interface CompareOptions {
  /** How many scaled MADs below the median (default 3). */
  k?: number;
  /** How far below the median, as a fraction, before a value counts (default 0.1). */
  minDrop?: number;
}

export interface FigureComparison {
  figure: string;
  median: number;
  mad: number;
  /** Values below this are outliers (when also minDrop below the median); null below three machines. */
  threshold: number | null;
  machines: { machine: string; value: number; outlier: boolean }[];
}

export interface HealthComparison {
  k: number;
  minDrop: number;
  figures: FigureComparison[];
  /** machine → the figures it is an outlier on. */
  outliers: Record<string, string[]>;
}

const MAD_SCALE = 1.4826;

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** `figures`: machine → figure → value (healthMetrics of each machine's latest health run). */
export function compareHealth(figures: Record<string, Record<string, number>>, o: CompareOptions = {}): HealthComparison {
  const k = o.k ?? 3;
  const minDrop = o.minDrop ?? 0.1;
  const names = [...new Set(Object.values(figures).flatMap((f) => Object.keys(f)))].sort();
  const out: HealthComparison = { k, minDrop, figures: [], outliers: {} };
  for (const figure of names) {
    const values = Object.entries(figures)
      .filter(([, f]) => f[figure] !== undefined)
      .map(([machine, f]) => ({ machine, value: f[figure]! }))
      .sort((a, b) => a.machine.localeCompare(b.machine));
    const med = median(values.map((v) => v.value));
    const mad = MAD_SCALE * median(values.map((v) => Math.abs(v.value - med)));
    const threshold = values.length >= 3 ? med - k * mad : null;
    const machines = values.map((v) => ({ ...v, outlier: threshold !== null && v.value < threshold && v.value < med * (1 - minDrop) }));
    for (const m of machines) if (m.outlier) (out.outliers[m.machine] ??= []).push(figure);
    out.figures.push({ figure, median: med, mad, threshold, machines });
  }
  return out;
}
