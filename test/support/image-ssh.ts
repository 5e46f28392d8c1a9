/** SSH into lab VMs through a host-forwarded port, with a key made for the test. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface SshKey {
  privateKeyPath: string;
  publicKey: string;
}

export async function generateSshKey(dir: string): Promise<SshKey> {
  const privateKeyPath = join(dir, 'id_ed25519');
  await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'plinth-image-test', '-f', privateKeyPath]);
  return { privateKeyPath, publicKey: readFileSync(`${privateKeyPath}.pub`, 'utf8').trim() };
}

/** A TCP port of 127.0.0.1 nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface SshTarget {
  key: SshKey;
  port: number;
  user: string;
}

export interface SshResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function ssh(target: SshTarget, command: string, timeoutMs = 60_000): Promise<SshResult> {
  const args = [
    '-i', target.key.privateKeyPath,
    '-p', String(target.port),
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=10',
    '-o', 'LogLevel=ERROR',
    `${target.user}@127.0.0.1`,
    command,
  ];
  try {
    const { stdout, stderr } = await execFileAsync('ssh', args, { timeout: timeoutMs });
    return { exitCode: 0, stdout, stderr };
  } catch (e) {
    const failure = e as { code?: number | string; stdout?: string; stderr?: string };
    return { exitCode: typeof failure.code === 'number' ? failure.code : 255, stdout: failure.stdout ?? '', stderr: failure.stderr ?? String(e) };
  }
}

/** Retries `command` until it succeeds (sshd and the user appear late in a first boot). */
export async function sshWhenReady(target: SshTarget, command: string, timeoutMs: number): Promise<SshResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await ssh(target, command);
    if (result.exitCode === 0) return result;
    if (Date.now() > deadline) {
      throw new Error(`ssh ${target.user}@127.0.0.1:${target.port} '${command}' kept failing: ${result.stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 3000));
  }
}
