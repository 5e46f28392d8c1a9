import type { Command } from 'commander';
import type { PlinthClient } from '../api/client.js';
import type { Output } from './output.js';
import { UsageError } from './errors.js';
import { formatSeconds, parseDuration } from '../core/clock.js';

/** What every command gets: where to print, the environment, and a client built on demand. */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  out: Output;
  client(): PlinthClient;
  /** Resolves when a long-running command (serve) should stop. */
  stopSignal?: Promise<void>;
}

export type CommandRegistrar = (parent: Command, ctx: CliContext) => void;

/**
 * `plinth <noun> <verb>`: a noun and the registrars of its verbs, loaded only when a command
 * line names the noun (so that `plinth --help` does not load what every verb imports).
 */
export interface CommandGroup {
  noun: string;
  description: string;
  verbs: () => Promise<CommandRegistrar[]>;
}

/** Accumulates a repeatable option. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `key=value` pairs from repeatable flags. */
export function parsePairs(pairs: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new UsageError(`${flag}: '${p}' must be key=value`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

export function onOff(value: string | undefined, flag: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (['on', 'true', 'yes', '1'].includes(value)) return true;
  if (['off', 'false', 'no', '0'].includes(value)) return false;
  throw new UsageError(`${flag}: '${value}' must be on or off`);
}

/** An option that takes one of a few words, typed as that word (the API's schema says the same). */
export function oneOf<const T extends string>(value: string, flag: string, values: readonly T[]): T {
  const found = values.find((v) => v === value);
  if (found === undefined) throw new UsageError(`${flag}: '${value}' must be ${values.slice(0, -1).join(', ')} or ${values.at(-1)}`);
  return found;
}

export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag}: '${value}' must be a positive whole number`);
  return n;
}

/** A duration flag (`90s`, `30m`, `2h`, `1d`, or plain seconds) as whole seconds, within [min, max] seconds when given. */
export function durationSeconds(text: string, flag: string, bounds?: { min: number; max: number }): number {
  let ms: number;
  try {
    ms = /^\d+$/.test(text.trim()) ? Number(text) * 1000 : parseDuration(text);
  } catch {
    throw new UsageError(`${flag}: '${text}' is not a duration (e.g. 60s, 2m)`);
  }
  const s = Math.round(ms / 1000);
  if (bounds && (s < bounds.min || s > bounds.max)) throw new UsageError(`${flag}: '${text}' must be between ${formatSeconds(bounds.min)} and ${formatSeconds(bounds.max)}`);
  return s;
}
