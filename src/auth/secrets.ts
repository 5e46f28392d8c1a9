import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlinthError } from '../core/errors.js';
import type { Db } from '../store/database.js';

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

/**
 * Refuses a key that does not open the secrets the database holds (a data directory's
 * secret.key lost or replaced, another controller's PLINTH_SECRET_KEY): found at start-up
 * rather than at the first power call, webhook or deploy callback that needs one. One sealed
 * value of each kind is tried; none stored passes.
 */
export async function verifySecretKey(db: Db, box: SecretBox): Promise<void> {
  const samples = [
    db.selectFrom('appliances').select(['name as owner', 'password_enc as sealed']).where('password_enc', 'is not', null).limit(1).executeTakeFirst().then((r) => r && { what: `appliance ${r.owner}'s password`, sealed: r.sealed! }),
    db.selectFrom('webhooks').select(['url as owner', 'secret_enc as sealed']).limit(1).executeTakeFirst().then((r) => r && { what: `webhook ${r.owner}'s secret`, sealed: r.sealed }),
    db.selectFrom('runs').select(['id as owner', 'callback_sealed as sealed']).where('callback_sealed', 'is not', null).limit(1).executeTakeFirst().then((r) => r && { what: `run ${r.owner}'s callback secret`, sealed: r.sealed! }),
  ];
  for (const s of await Promise.all(samples)) {
    if (!s) continue;
    try {
      box.decrypt(s.sealed);
    } catch (e) {
      throw new PlinthError('validation', `secretKey: the configured secret key (PLINTH_SECRET_KEY or the data directory's secret.key) cannot decrypt the secrets in the database (${s.what}): start with the key they were sealed with`, { cause: e });
    }
  }
}
