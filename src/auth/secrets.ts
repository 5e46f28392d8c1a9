import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlinthError } from '../core/errors.js';

/**
 * Secrets at rest (BMC and hypervisor passwords): AES-256-GCM with a random 96-bit nonce per
 * value; the stored form is `v1:` + base64(nonce ‖ tag ‖ ciphertext). The key comes from
 * PLINTH_SECRET_KEY (base64 of 32 bytes) or DATA_DIR/secret.key, created with mode 0600 on
 * first start. Decrypted values are handed to providers and nowhere else.
 */
export const SECRET_KEY_FILE = 'secret.key';

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  static fromKey(base64: string): SecretBox {
    const key = Buffer.from(base64.trim(), 'base64');
    if (key.length !== 32) throw new PlinthError('validation', 'secretKey: must be the base64 encoding of exactly 32 bytes');
    return new SecretBox(key);
  }

  /** The configured key, or the data directory's key file (created on first use). */
  static load(configuredKey: string, dataDir: string): { box: SecretBox; created: string | null } {
    if (configuredKey) return { box: SecretBox.fromKey(configuredKey), created: null };
    const path = join(dataDir, SECRET_KEY_FILE);
    if (existsSync(path)) return { box: SecretBox.fromKey(readFileSync(path, 'utf8')), created: null };
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
    return { box: SecretBox.fromKey(readFileSync(path, 'utf8')), created: path };
  }

  /**
   * A key for one purpose (signing run tickets…), derived from the secret key so that no
   * second secret has to be kept, and so that a value made for one purpose is worthless for
   * another. Controllers sharing a database share the key, so they derive the same one.
   */
  deriveKey(purpose: string): Buffer {
    return createHmac('sha256', this.key).update(`plinth:${purpose}`).digest();
  }

  encrypt(plaintext: string): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `v1:${Buffer.concat([nonce, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  decrypt(stored: string): string {
    if (!stored.startsWith('v1:')) throw new PlinthError('internal', 'stored secret has an unknown format');
    const raw = Buffer.from(stored.slice(3), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    try {
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch (e) {
      throw new PlinthError('internal', 'a stored secret cannot be decrypted with this key (was PLINTH_SECRET_KEY or secret.key changed?)', { cause: e });
    }
  }
}
