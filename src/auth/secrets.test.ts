import { describe, expect, it } from 'vitest';
import { mkdtempSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SecretBox } from './secrets.js';

describe('SecretBox', () => {
  it('round-trips, with a fresh nonce each time and no plaintext in the stored form', () => {
    const box = SecretBox.fromKey(randomBytes(32).toString('base64'));
    const a = box.encrypt('hunter2-BMC');
    const b = box.encrypt('hunter2-BMC');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^v1:[A-Za-z0-9+/=]+$/);
    expect(a).not.toContain('hunter2');
    expect(box.decrypt(a)).toBe('hunter2-BMC');
  });

  it('refuses a tampered value and a wrong key', () => {
    const box = SecretBox.fromKey(randomBytes(32).toString('base64'));
    const stored = box.encrypt('secret');
    const raw = Buffer.from(stored.slice(3), 'base64');
    raw[raw.length - 1]! ^= 1;
    expect(() => box.decrypt(`v1:${raw.toString('base64')}`)).toThrow(/cannot be decrypted/);
    expect(() => SecretBox.fromKey(randomBytes(32).toString('base64')).decrypt(stored)).toThrow(/cannot be decrypted/);
  });

  it('creates DATA_DIR/secret.key with mode 0600 once and reuses it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'plinth-secret-'));
    const first = SecretBox.load('', dir);
    expect(first.created).toBe(join(dir, 'secret.key'));
    expect(statSync(join(dir, 'secret.key')).mode & 0o777).toBe(0o600);
    const key = readFileSync(join(dir, 'secret.key'), 'utf8');
    const stored = first.box.encrypt('x');
    const again = SecretBox.load('', dir);
    expect(again.created).toBeNull();
    expect(readFileSync(join(dir, 'secret.key'), 'utf8')).toBe(key);
    expect(again.box.decrypt(stored)).toBe('x');
  });

  it('rejects a configured key of the wrong size', () => {
    expect(() => SecretBox.fromKey(randomBytes(16).toString('base64'))).toThrow(/exactly 32 bytes/);
  });
});
