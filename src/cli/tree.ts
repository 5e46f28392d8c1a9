import { spawn } from 'node:child_process';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { CommandRegistrar } from './context.js';
import { UsageError } from './errors.js';
import { sendStream } from './upload.js';
import { UPGRADE_FILES, type Tree, type UpgradeStep } from '../trees/store.js';

const enc = encodeURIComponent;

/** `plinth tree import|list|upgrade-path`: eDeploy's trees (docs/trees.md). */
export const registerTreeCommands: CommandRegistrar = (tree, ctx) => {
  tree
    .command('import')
    .description('import a role at a version from a directory (sent as a tar stream, owners and modes kept) or a tar archive (.tar, .tgz, .edeploy)')
    .argument('<role>', 'the role, e.g. mysql')
    .argument('<version>', 'the version, e.g. D7-F.1.0.0')
    .argument('<source>', 'a directory or a tar archive')
    .option('--json', 'print JSON')
    .action(async (role: string, version: string, source: string, o: { json?: boolean }) => {
      if (!existsSync(source)) throw new UsageError(`${source}: no such file or directory`);
      let body: Readable;
      let tarFailed: Promise<string | null> = Promise.resolve(null);
      if (statSync(source).isDirectory()) {
        const tar = spawn('tar', ['-C', source, '--numeric-owner', '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let err = '';
        tar.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        tarFailed = new Promise((resolve) => tar.once('close', (code) => resolve(code === 0 ? null : `tar of ${source} failed: ${err.trim().split('\n')[0]}`)));
        body = tar.stdout!;
      } else {
        body = createReadStream(source);
      }
      const t = await sendStream<Tree>(ctx, 'PUT', `/api/v1/trees/${enc(role)}/${enc(version)}`, Readable.toWeb(body) as ReadableStream);
      const failed = await tarFailed;
      if (failed) throw new Error(failed);
      if (o.json) return ctx.out.json(t);
      ctx.out.line(`tree ${t.role} ${t.version}: ${t.entries} entries, ${(t.bytes / 2 ** 20).toFixed(1)} MiB`);
    });

  tree
    .command('list')
    .alias('ls')
    .description('list stored trees with the versions each can be upgraded to')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await ctx.client().request<{ items: Tree[] }>('GET', '/api/v1/trees');
      if (o.json) return ctx.out.json(items);
      ctx.out.table(
        items.map((t) => ({ role: t.role, version: t.version, entries: t.entries, MiB: (t.bytes / 2 ** 20).toFixed(1), upgrades: t.upgrades.join(',') || null, imported: t.importedAt })),
        ['role', 'version', 'entries', 'MiB', 'upgrades', 'imported'],
      );
    });

  tree
    .command('upgrade-path')
    .description("store the upgrade step of a role from one version to another: a directory holding eDeploy's exclude, add_only, pre and post (each optional)")
    .argument('<role>', 'the role')
    .argument('<from-version>', 'the version upgraded from')
    .argument('<to-version>', 'the version upgraded to')
    .argument('<directory>', 'the metadata directory')
    .option('--json', 'print JSON')
    .action(async (role: string, from: string, to: string, dir: string, o: { json?: boolean }) => {
      if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${dir}: not a directory`);
      const unknown = readdirSync(dir).filter((f) => !(UPGRADE_FILES as readonly string[]).includes(f));
      if (unknown.length) throw new UsageError(`${dir}: ${unknown.join(', ')}: an upgrade step holds only ${UPGRADE_FILES.join(', ')}`);
      const step: UpgradeStep = {};
      for (const f of UPGRADE_FILES) if (existsSync(join(dir, f))) step[f] = readFileSync(join(dir, f), 'utf8');
      const t = await ctx.client().request<Tree>('PUT', `/api/v1/trees/${enc(role)}/${enc(from)}/upgrades/${enc(to)}`, step);
      if (o.json) return ctx.out.json(t);
      ctx.out.line(`${role}: ${from} → ${to} stored (${Object.keys(step).join(', ') || 'no files'}); ${from} upgrades to ${t.upgrades.join(', ')}`);
    });
};
