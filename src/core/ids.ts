import { randomBytes, randomUUID } from 'node:crypto';

/** Identifiers are UUIDs: unique across controllers sharing one database without coordination. */
export const newId = (): string => randomUUID();

/** A secret token: 32 random bytes, base64url, with a prefix that says what it is. */
export const newSecret = (prefix: string): string => `${prefix}_${randomBytes(32).toString('base64url')}`;

const ADJECTIVES = [
  'able', 'agile', 'amber', 'ample', 'azure', 'bold', 'brave', 'brisk', 'calm', 'civic', 'clear', 'clever', 'cosmic',
  'crisp', 'dapper', 'deft', 'eager', 'early', 'epic', 'fair', 'fast', 'fine', 'firm', 'fleet', 'fresh', 'frank',
  'gentle', 'giant', 'glad', 'golden', 'grand', 'green', 'happy', 'hardy', 'honest', 'humble', 'ideal', 'jolly', 'keen',
  'kind', 'lively', 'loyal', 'lucid', 'lucky', 'mellow', 'merry', 'mighty', 'modest', 'neat', 'noble', 'novel', 'polite',
  'prime', 'proud', 'quick', 'quiet', 'rapid', 'ready', 'regal', 'robust', 'rosy', 'royal', 'rustic', 'savvy', 'sharp',
  'shiny', 'silent', 'sleek', 'smart', 'snug', 'solid', 'sound', 'spry', 'stable', 'steady', 'stoic', 'sturdy', 'sunny',
  'super', 'swift', 'tidy', 'tough', 'true', 'trusty', 'upbeat', 'urban', 'valid', 'vivid', 'warm', 'wise', 'witty',
  'young', 'zany', 'zesty',
];
const NOUNS = [
  'badger', 'bison', 'bobcat', 'cougar', 'crane', 'dingo', 'eagle', 'egret', 'falcon', 'ferret', 'finch', 'fox', 'gecko',
  'gibbon', 'gopher', 'grouse', 'heron', 'hornet', 'ibex', 'impala', 'jackal', 'jaguar', 'koala', 'lemur', 'lynx',
  'magpie', 'marmot', 'marten', 'merlin', 'mink', 'moose', 'narwhal', 'newt', 'ocelot', 'orca', 'osprey', 'otter', 'owl',
  'panda', 'parrot', 'pelican', 'petrel', 'puffin', 'puma', 'quail', 'rabbit', 'raven', 'robin', 'salmon', 'seal',
  'shrike', 'skunk', 'sloth', 'sparrow', 'stork', 'swift', 'tapir', 'tern', 'thrush', 'tiger', 'toucan', 'trout',
  'turtle', 'viper', 'walrus', 'weasel', 'whale', 'wombat', 'wren', 'yak', 'zebra',
];

/**
 * A readable machine name such as `brisk-heron-3f7a`: easy to say and type, unlikely to
 * collide (the caller still retries on a unique-constraint violation).
 */
export function readableName(random: () => number = Math.random): string {
  const pick = (list: string[]) => list[Math.floor(random() * list.length)]!;
  const suffix = Math.floor(random() * 0x10000).toString(16).padStart(4, '0');
  return `${pick(ADJECTIVES)}-${pick(NOUNS)}-${suffix}`;
}

/** Machine names are hostname labels: lower-case letters, digits and hyphens, 1–63 characters. */
export const MACHINE_NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
