/**
 * govmomi's vCenter simulator as a SOAP peer (notes/real-peers.md): built at test time,
 * offline, from Debian's `golang-github-vmware-govmomi-dev` (0.24) with `golang-go`, from the
 * launcher in ./govmomi-sim/main.go and a go.mod written here that points at the Debian
 * sources. The binary and Go's build cache are kept in the system temp directory, keyed by
 * the launcher's content, so only the first run pays the ~20 s build.
 *
 * In this simulator version the vSphere 7 `/api` REST endpoints answer 404: it is the
 * "older vCenter" a provider must reach over SOAP.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDebianPackages, hasCommand } from './debian-packages.js';

const LAUNCHER = join(dirname(fileURLToPath(import.meta.url)), 'govmomi-sim', 'main.go');
const GOVMOMI_SRC = '/usr/share/gocode/src/github.com/vmware/govmomi';
const UUID_SRC = '/usr/share/gocode/src/github.com/google/uuid';

const GO_MOD = `module plinth.test/vcsim

go 1.19

require (
	github.com/vmware/govmomi v0.24.2
	github.com/google/uuid v1.0.0
)

replace github.com/vmware/govmomi => ${GOVMOMI_SRC}

replace github.com/google/uuid => ${UUID_SRC}
`;

export interface GovmomiSimPeer {
  /** The endpoint address to give the provider (https://127.0.0.1:PORT). */
  address: string;
  /** The SOAP URL (…/sdk). */
  sdkUrl: string;
  username: string;
  password: string;
  close(): Promise<void>;
}

/**
 * Installs the Debian packages and builds the simulator (cached), so that test hooks only
 * start it. Call it at module level: the build then runs at collection time, outside any
 * hook timeout. Returns why the simulator cannot be had here, or undefined.
 */
export function govmomiSimUnavailable(): string | undefined {
  try {
    ensureDebianPackages(['golang-go', 'golang-github-vmware-govmomi-dev', 'golang-github-google-uuid-dev'], () => hasCommand('go') && existsSync(GOVMOMI_SRC) && existsSync(UUID_SRC));
    buildSimulator();
    return undefined;
  } catch (err) {
    return `govmomi simulator not buildable from Debian packages here: ${(err as Error).message.split('\n')[0]}`;
  }
}

/** Builds the launcher (once per launcher content) and returns the binary's path. */
function buildSimulator(): string {
  const hash = createHash('sha256').update(readFileSync(LAUNCHER)).update(GO_MOD).digest('hex').slice(0, 12);
  const root = join(tmpdir(), 'plinth-govmomi-sim');
  const binary = join(root, `vcsim-${hash}`);
  if (existsSync(binary)) return binary;
  const work = join(root, `build-${hash}-${process.pid}`);
  mkdirSync(work, { recursive: true });
  try {
    copyFileSync(LAUNCHER, join(work, 'main.go'));
    writeFileSync(join(work, 'go.mod'), GO_MOD);
    execFileSync('go', ['build', '-o', join(work, 'vcsim'), '.'], {
      cwd: work,
      stdio: 'pipe',
      timeout: 600_000,
      env: {
        ...process.env,
        GOFLAGS: '-mod=mod',
        GOPROXY: 'off',
        GOSUMDB: 'off',
        GOTOOLCHAIN: 'local',
        GOPATH: join(root, 'gopath'),
        GOCACHE: join(root, 'gocache'),
      },
    });
    // Atomic: a concurrent test process either sees no binary or a complete one.
    renameSync(join(work, 'vcsim'), binary);
    return binary;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export async function startGovmomiSim(options: { username?: string; password?: string } = {}): Promise<GovmomiSimPeer> {
  const username = options.username ?? 'administrator@vsphere.local';
  const password = options.password ?? 'Sim-Pass-1';
  const binary = buildSimulator();
  const child: ChildProcess = spawn(binary, ['-user', username], { env: { ...process.env, VCSIM_PASSWORD: password }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const sdkUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the simulator printed no URL: ${stderr}`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('http'));
      if (line) {
        clearTimeout(timer);
        resolve(line.trim());
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the simulator exited (${code}): ${stderr}`));
    });
  });
  const url = new URL(sdkUrl);
  return {
    address: `${url.protocol}//${url.host}`,
    sdkUrl,
    username,
    password,
    close: async () => {
      child.stdin?.end('\n');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
