import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Supervisor } from '../dhcp/supervisor.js';

/**
 * The read-only rsync daemon that serves trees the way eDeploy's rsync server did (modules
 * `install` and `metadata`), run as a supervised child: Debian's rsync, not a reimplementation.
 */
export interface RsyncdPlan {
  installDir: string;
  metadataDir: string;
  /** `rsync --daemon` address and port. */
  address: string;
  port: number;
  /** rsync `hosts allow` (empty: anyone who can reach the port). */
  hostsAllow: string;
  /** Running as root: chroot into each module and read every file whatever its owner. */
  root: boolean;
}

/** rsyncd.conf for the plan (pure). */
export function rsyncdConfig(p: RsyncdPlan): string {
  const global = [
    '# Written by Plinth at every start; edits are lost.',
    'read only = yes',
    'write only = no',
    'list = yes',
    'numeric ids = yes',
    // Trees hold a whole system's files (owned by root, some mode 0600): reading them needs root.
    ...(p.root ? ['uid = 0', 'gid = 0', 'use chroot = yes'] : ['use chroot = no']),
    'max connections = 64',
    'timeout = 600',
    'reverse lookup = no',
    ...(p.hostsAllow ? [`hosts allow = ${p.hostsAllow}`] : []),
  ];
  const mod = (name: string, path: string, comment: string) => [``, `[${name}]`, `  path = ${path}`, `  comment = ${comment}`];
  return [...global, ...mod('install', p.installDir, 'Plinth trees: <version>/<role>/'), ...mod('metadata', p.metadataDir, 'Plinth tree upgrades: <from>/<role>/<to>/'), ''].join('\n');
}

export class RsyncDaemon {
  private readonly supervisor: Supervisor;
  readonly confFile: string;

  constructor(
    private readonly plan: RsyncdPlan,
    dir: string,
    command: string,
    log: (event: string, fields: Record<string, unknown>) => void,
  ) {
    mkdirSync(dir, { recursive: true });
    this.confFile = join(dir, 'rsyncd.conf');
    this.supervisor = new Supervisor({
      argv: [command, '--daemon', '--no-detach', `--config=${this.confFile}`, `--address=${plan.address}`, `--port=${plan.port}`, '--log-file=/dev/stderr'],
      onLine: (line) => log('rsyncd', { line: line.slice(0, 500) }),
      log: (event, fields) => log(`rsyncd ${event}`, fields),
    });
  }

  get running(): boolean {
    return this.supervisor.running;
  }

  start(): void {
    mkdirSync(this.plan.installDir, { recursive: true, mode: 0o755 });
    mkdirSync(this.plan.metadataDir, { recursive: true, mode: 0o755 });
    writeFileSync(this.confFile, rsyncdConfig(this.plan));
    this.supervisor.start();
  }

  stop(): Promise<void> {
    return this.supervisor.stop();
  }
}
