import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PlinthError, validation } from '../core/errors.js';
import { installerDir, MANIFEST_FILE } from './manifest.js';

/**
 * The files of a built installer a controller accepts by upload (`PUT /api/v1/installer/:file`),
 * each with the most it may weigh: a Debian kernel is about 10 MB, the initramfs is kept under
 * 200 MB by the build (docs/boot.md), the manifest is a few kB.
 */
export const INSTALLER_UPLOAD_LIMITS = {
  vmlinuz: 64 * 2 ** 20,
  'initrd.img': 512 * 2 ** 20,
  [MANIFEST_FILE]: 2 ** 20,
} as const;
export type InstallerUploadFile = keyof typeof INSTALLER_UPLOAD_LIMITS;
export const INSTALLER_UPLOAD_FILES = Object.keys(INSTALLER_UPLOAD_LIMITS) as InstallerUploadFile[];

export interface ReceivedInstallerFile {
  file: InstallerUploadFile;
  bytes: number;
  sha256: string;
}

/**
 * Streams an uploaded installer file into DATA_DIR/boot/installer: into a temporary file
 * beside the target, counted and hashed on the way, then renamed over the target, so a
 * booting machine gets the old file or the new one, never half of one. Too large, empty or
 * not matching `expectedSha256`: nothing is kept.
 */
export async function receiveInstallerFile(dataDir: string, file: InstallerUploadFile, body: Readable, expectedSha256?: string): Promise<ReceivedInstallerFile> {
  const limit = INSTALLER_UPLOAD_LIMITS[file];
  const dir = installerDir(dataDir);
  mkdirSync(dir, { recursive: true });
  const target = join(dir, file);
  const temp = join(dir, `.${file}.upload-${randomBytes(6).toString('hex')}`);
  const hash = createHash('sha256');
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (bytes > limit) return done(new PlinthError('payload_too_large', `${file}: larger than ${limit} bytes, the most an installer's ${file} may be`, { details: { field: 'body', limit } }));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(body, counter, createWriteStream(temp, { mode: 0o644 }));
    if (bytes === 0) throw validation('body', 'the upload is empty');
    const sha256 = hash.digest('hex');
    if (expectedSha256 && expectedSha256.toLowerCase() !== sha256) {
      throw new PlinthError('checksum_mismatch', `sha256: the upload's checksum is ${sha256}, not ${expectedSha256} (transfer damaged?)`, {
        details: { field: 'sha256', expected: expectedSha256, actual: sha256 },
      });
    }
    renameSync(temp, target);
    return { file, bytes, sha256 };
  } finally {
    rmSync(temp, { force: true });
  }
}
