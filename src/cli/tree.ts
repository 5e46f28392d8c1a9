import { spawn } from 'node:child_process';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { CommandRegistrar } from './context.js';
import { collect, durationSeconds, positiveInt } from './context.js';
import { UsageError } from './errors.js';
import { sendStream } from './upload.js';
import { UPGRADE_FILES, type Tree, type UpgradeStep } from '../trees/store.js';
import type { Roll } from '../trees/rolls.js';
import { formatSeconds } from '../core/clock.js';

const enc = encodeURIComponent;

/** A roll as one line per machine, under a summary line. */
function describeRoll(r: Roll): string[] {
  const counts = Object.entries(r.counts).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(', ');
  const head = `roll ${r.id}: ${r.role} to ${r.to}, ${r.parallel} at a time, each within ${formatSeconds(r.deadlineSeconds)}: ${r.state} (${counts})`;
  const failure = r.failure ? [`stopped at ${r.failure.machine}: ${r.failure.message}`] : [];
  return [head, ...failure];
}

/** `plinth tree import|list|upgrade-path|roll|roll-list|roll-show|roll-stop`: eDeploy's trees (docs/trees.md). */
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

  tree
    .command('roll')
    .description('upgrade machines of a role to a version, N at a time, stopping at the first failure (each host upgrades itself when `edeploy poll` asks)')
    .argument('<role>', 'the role the machines run')
    .argument('<to-version>', 'the version to take them to')
    .option('--machines <names>', 'the machines, comma-separated, in the order they upgrade')
    .option('--tag <key[=value]>', 'or every machine with this tag (repeatable; all must match), in name order', collect, [])
    .option('--parallel <n>', 'how many upgrade at once (default 1)')
    .option('--deadline <duration>', "how long each machine has, from being asked, to report the version (90s, 30m, 2h; default 1h): one still upgrading after it fails the roll")
    .option('--json', 'print JSON')
    .action(async (role: string, to: string, o: { machines?: string; tag: string[]; parallel?: string; deadline?: string; json?: boolean }) => {
      const machines = o.machines?.split(',').map((s) => s.trim()).filter(Boolean);
      if (!!machines?.length === o.tag.length > 0) throw new UsageError('give --machines A,B,C or --tag k=v (one of the two)');
      const body = {
        role,
        to,
        ...(machines?.length ? { machines } : { tags: o.tag }),
        ...(o.parallel ? { parallel: positiveInt(o.parallel, '--parallel') } : {}),
        // Its bounds are the API's (400 naming deadlineSeconds).
        ...(o.deadline !== undefined ? { deadlineSeconds: durationSeconds(o.deadline, '--deadline') } : {}),
      };
      const r = await ctx.client().request<Roll>('POST', '/api/v1/tree-rolls', body);
      if (o.json) return ctx.out.json(r);
      for (const l of describeRoll(r)) ctx.out.line(l);
      ctx.out.line(`follow it with: plinth tree roll-show ${r.id}`);
    });

  tree
    .command('roll-list')
    .description('rolling upgrades, newest first')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await ctx.client().request<{ items: Roll[] }>('GET', '/api/v1/tree-rolls');
      if (o.json) return ctx.out.json(items);
      ctx.out.table(
        items.map((r) => ({ id: r.id, role: r.role, to: r.to, parallel: r.parallel, deadline: formatSeconds(r.deadlineSeconds), state: r.state, machines: r.machines.length, upgraded: r.counts.upgraded, failure: r.failure ? `${r.failure.machine}: ${r.failure.message}` : null, started: r.createdAt })),
        ['id', 'role', 'to', 'parallel', 'deadline', 'state', 'machines', 'upgraded', 'failure', 'started'],
      );
    });

  tree
    .command('roll-show')
    .description('a rolling upgrade and where each of its machines is')
    .argument('<id>', 'the roll')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const r = await ctx.client().request<Roll>('GET', `/api/v1/tree-rolls/${enc(id)}`);
      if (o.json) return ctx.out.json(r);
      for (const l of describeRoll(r)) ctx.out.line(l);
      ctx.out.table(
        r.machines.map((m) => ({ machine: m.name, state: m.state, from: m.from, started: m.startedAt, polled: m.polledAt, deadline: m.state === 'upgrading' ? m.deadlineAt : null, finished: m.finishedAt, message: m.message })),
        ['machine', 'state', 'from', 'started', 'polled', 'deadline', 'finished', 'message'],
      );
    });

  tree
    .command('roll-stop')
    .description('stop a running roll: no further machine is asked to upgrade (those upgrading finish on their own)')
    .argument('<id>', 'the roll')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const r = await ctx.client().request<Roll>('POST', `/api/v1/tree-rolls/${enc(id)}/stop`, {});
      if (o.json) return ctx.out.json(r);
      for (const l of describeRoll(r)) ctx.out.line(l);
    });
};
