import { createReadStream, existsSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import type { CommandRegistrar } from './context.js';
import { ExitCode, UsageError } from './errors.js';
import { buildPlace, uploadFile } from './controller-place.js';
import { imageBuildCommand, DEFAULT_IMAGE_NAME, treeBuildCommand } from '../images/builder/index.js';
import { TREE_NAME_PATTERN } from '../protocol/deploy.js';
import type { Tree } from '../trees/store.js';
import { sendStream } from './upload.js';
import { IMAGE_KINDS } from '../images/store.js';

type ImageView = { name: string; kind: string; layout: string | null; sourceFormat: string; sizeBytes: number; sha256: string; firmware: string[] | null; createdAt: string };

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

/** `plinth image build|upload|list|show|delete`. */
export const registerImageCommands: CommandRegistrar = (image, ctx) => {
  image
    .command('build')
    .description('build a bootable Debian 12 disk image (BIOS and UEFI, cloud-init) into the store, or with --tree the same system as a tree; run on the controller host, as root')
    .argument('[name]', 'image name', DEFAULT_IMAGE_NAME)
    .option('--size <GiB>', 'disk image size in GiB', '3')
    .option('--package <name>', 'extra Debian package (repeatable)', (v: string, p: string[] = []) => [...p, v], [])
    .option('--post-install <script>', 'a script run inside the image after installation')
    .option('--mirror <url>', 'Debian mirror')
    .option('--refresh', 'rebuild the cached base system')
    .option('--data-dir <dir>', 'the controller\'s data directory (PLINTH_DATA_DIR, default ./var)')
    .option('--verbose', 'show the tools\' output')
    .option('--tree <version>', 'build the system as a tree instead of a disk image, stored as role NAME at this version (eDeploy\'s trees, docs/trees.md)')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, o: { size: string; package: string[]; postInstall?: string; mirror?: string; refresh?: boolean; dataDir?: string; verbose?: boolean; tree?: string; json?: boolean }, cmd: Command) => {
      const size = Number(o.size);
      if (!Number.isFinite(size) || size <= 0) throw new UsageError(`--size: '${o.size}' must be a number of GiB`);
      if (o.postInstall && !existsSync(o.postInstall)) throw new UsageError(`--post-install: ${o.postInstall} does not exist`);
      if (o.tree !== undefined && !new RegExp(TREE_NAME_PATTERN).test(o.tree)) throw new UsageError(`--tree: '${o.tree}' is not a version (letters, digits, '.', '_', '+', '-')`);
      if (o.tree !== undefined && !new RegExp(TREE_NAME_PATTERN).test(name)) throw new UsageError(`name: '${name}' is not a role (letters, digits, '.', '_', '+', '-')`);
      // The image is adopted from the controller's own data directory: a build anywhere else
      // would end in "no built image", so it is refused before the work starts.
      const place = await buildPlace(ctx, cmd, o.dataDir);
      if (place.kind === 'remote') {
        throw new UsageError(
          `image build: the controller at ${place.url} keeps its images in ${place.controller.dataDir.path} on its own host, which this host does not see` +
            `${o.dataDir ? ` (--data-dir ${resolve(o.dataDir)} is another directory)` : ''}; run plinth image build on the controller's host,` +
            ` or upload an image built elsewhere with plinth image upload FILE --name ${name}`,
        );
      }
      const inputs = {
        dataDir: place.dataDir,
        ...(o.package.length ? { extraPackages: o.package } : {}),
        ...(o.postInstall ? { postInstallScript: resolve(o.postInstall) } : {}),
        ...(o.mirror ? { mirror: o.mirror } : {}),
        ...(o.refresh ? { refreshBase: true } : {}),
        ...(o.verbose ? { verbose: true } : {}),
        out: { line: (l: string) => ctx.out.error(l), error: (l: string) => ctx.out.error(l) },
      };
      if (o.tree !== undefined) {
        const { code, tree } = await treeBuildCommand({ ...inputs, name: `${name}-${o.tree}` });
        if (code !== 0 || !tree) throw new ExitCode(code || 1);
        // Stored the way `plinth tree import` stores an archive; the archive goes once stored.
        const stored = await sendStream<Tree>(ctx, 'PUT', `/api/v1/trees/${encodeURIComponent(name)}/${encodeURIComponent(o.tree)}`, Readable.toWeb(createReadStream(tree.path)) as ReadableStream);
        rmSync(tree.path, { force: true });
        if (o.json) ctx.out.json(stored);
        else ctx.out.line(`tree ${stored.role} ${stored.version}: ${stored.entries} entries, ${(stored.bytes / 2 ** 20).toFixed(1)} MiB`);
        return;
      }
      const code = await imageBuildCommand({ ...inputs, name, sizeBytes: Math.round(size * 2 ** 30) });
      if (code !== 0) throw new ExitCode(code);
      const adopted = await ctx.client().request<ImageView>('POST', `/api/v1/images/${encodeURIComponent(name)}/adopt`);
      if (o.json) ctx.out.json(adopted);
      else ctx.out.line(`image ${adopted.name}: ${gib(adopted.sizeBytes)}, sha256 ${adopted.sha256}, firmware ${adopted.firmware?.join('+')}`);
    });

  image
    .command('upload')
    .description('upload a disk image (raw or qcow2) or an installer file, streamed, with its checksum verified')
    .argument('<file>', 'the file')
    .requiredOption('--name <name>', 'image name')
    .option('--kind <kind>', `${IMAGE_KINDS.join('|')}`, 'disk')
    .option('--format <format>', 'raw or qcow2 (detected when absent)')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { name: string; kind: string; format?: string; json?: boolean }) => {
      if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
      if (!(IMAGE_KINDS as readonly string[]).includes(o.kind)) throw new UsageError(`--kind: '${o.kind}' must be one of ${IMAGE_KINDS.join(', ')}`);
      if (o.format && o.format !== 'raw' && o.format !== 'qcow2') throw new UsageError(`--format: '${o.format}' must be raw or qcow2`);
      const url = (sha256: string) => `/api/v1/images?${new URLSearchParams({ name: o.name, kind: o.kind, sha256, ...(o.format ? { format: o.format } : {}) })}`;
      const img = await uploadFile<ImageView>(ctx, file, url, basename(file), 'POST');
      if (o.json) ctx.out.json(img);
      else ctx.out.line(`uploaded ${img.name} (${img.kind}, ${img.sourceFormat}→raw ${gib(img.sizeBytes)}), sha256 ${img.sha256}`);
    });

  image
    .command('list')
    .alias('ls')
    .description('list the image store')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await ctx.client().request<{ items: ImageView[] }>('GET', '/api/v1/images');
      if (o.json) return ctx.out.json(items);
      ctx.out.table(items.map((i) => ({ ...i, size: gib(i.sizeBytes), firmware: i.firmware?.join('+') ?? null, sha256: i.sha256.slice(0, 16) })), ['name', 'kind', 'size', 'firmware', 'sha256', 'createdAt']);
    });

  image
    .command('show')
    .description('show one image')
    .argument('<image>', 'name or id')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { json?: boolean }) => {
      const i = await ctx.client().request<ImageView>('GET', `/api/v1/images/${encodeURIComponent(key)}`);
      if (o.json) return ctx.out.json(i);
      for (const [k, v] of Object.entries({ name: i.name, kind: i.kind, ...(i.layout ? { layout: i.layout } : {}), size: gib(i.sizeBytes), from: i.sourceFormat, sha256: i.sha256, firmware: i.firmware?.join(', ') ?? '-', created: i.createdAt })) ctx.out.line(`${(k + ':').padEnd(10)} ${v}`);
    });

  image
    .command('delete')
    .alias('rm')
    .description('delete an image no deployed machine runs and no running deploy uses')
    .argument('<image>', 'name or id')
    .action(async (key: string) => {
      await ctx.client().request('DELETE', `/api/v1/images/${encodeURIComponent(key)}`);
      ctx.out.line(`deleted ${key}`);
    });
};
