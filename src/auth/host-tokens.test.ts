import { describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { mintHostToken, openHostToken } from './host-tokens.js';

describe('host credentials', () => {
  const key = randomBytes(32);
  const machine = randomUUID();
  const run = randomUUID();

  it('opens what it minted, and mints the same credential for the same machine and run', () => {
    const token = mintHostToken(key, machine, run);
    expect(token).toMatch(/^plhost_/);
    expect(mintHostToken(key, machine, run)).toBe(token);
    expect(openHostToken(key, token)).toEqual({ machineId: machine, runId: run });
  });

  it('refuses another key, another machine in the same signature, and junk', () => {
    const token = mintHostToken(key, machine, run);
    expect(openHostToken(randomBytes(32), token)).toBeNull();
    const other = randomUUID();
    expect(openHostToken(key, token.replace(machine, other))).toBeNull();
    expect(openHostToken(key, `${token}x`)).toBeNull();
    for (const junk of ['', 'plhost_', 'plhost_a.b.c', `plrun_${machine}.${run}.x`, `plhost_${machine}.${run}`, 'plhost_' + 'a'.repeat(300)]) expect(openHostToken(key, junk)).toBeNull();
  });
});
