/**
 * `plinth image build NAME`: builds an image into the data directory and says how it went.
 * Returns the exit code instead of exiting, so the CLI decides when the process ends.
 */
import { join } from 'node:path';
import { isPlinthError, messageOf } from '../../core/errors.js';
import { buildImage } from './build.js';
import { buildTree, type BuiltTree } from './tree.js';
import { DEFAULT_IMAGE_NAME } from './options.js';
import { outputOf } from '../../build/process.js';
import { TOOL_OUTPUT_PREFIX } from './process.js';

/** Where images and the builder's cache live in a data directory. */
export function imageBuilderPaths(dataDir: string): { outputDir: string; cacheDir: string } {
  return { outputDir: join(dataDir, 'images'), cacheDir: join(dataDir, 'cache', 'image-builder') };
}

/** The printing side of the CLI's output (structurally compatible with it). */
export interface CommandOutput {
  line(text: string): void;
  error(text: string): void;
}

export interface ImageBuildCommandOptions {
  name?: string;
  dataDir: string;
  sizeBytes?: number;
  extraPackages?: string[];
  postInstallScript?: string;
  mirror?: string;
  refreshBase?: boolean;
  /** Print every line the build tools print, not only the build's own steps. */
  verbose?: boolean;
  /** Print the result as JSON (the manifest) instead of a summary. */
  json?: boolean;
  out?: CommandOutput;
  /** Aborting it stops the build and cleans up; SIGINT and SIGTERM do the same while it runs. */
  signal?: AbortSignal;
}

const TAIL_ON_FAILURE = 30;

const processOutput: CommandOutput = {
  line: (text) => process.stdout.write(text + '\n'),
  error: (text) => process.stderr.write(text + '\n'),
};

export async function imageBuildCommand(options: ImageBuildCommandOptions): Promise<number> {
  const name = options.name ?? DEFAULT_IMAGE_NAME;
  const { outputDir, cacheDir } = imageBuilderPaths(options.dataDir);
  return runBuildCommand(options, async ({ log, signal, out }) => {
    const image = await buildImage({
      name,
      outputDir,
      cacheDir,
      log,
      signal,
      ...(options.sizeBytes !== undefined && { sizeBytes: options.sizeBytes }),
      ...commonInputs(options),
    });
    if (options.json) {
      out.line(JSON.stringify({ path: image.path, manifestPath: image.manifestPath, manifest: image.manifest }, null, 2));
    } else {
      const m = image.manifest;
      out.line(`built ${image.path}`);
      out.line(`  manifest  ${image.manifestPath}`);
      out.line(`  sha256    ${image.sha256}`);
      out.line(`  size      ${image.sizeBytes} bytes (${m.allocatedBytes} allocated)`);
      out.line(`  debian    ${m.distribution.version} (${m.distribution.suite}), kernel ${m.kernel.version}`);
      out.line(`  firmware  ${image.firmware.join(', ')}; ${m.packages.length} packages; built in ${m.buildSeconds} s`);
    }
  });
}

/**
 * `plinth image build ROLE --tree VERSION`: the same system built as a tree, NAME.edeploy in
 * the images directory (the CLI then imports it into the tree store and removes it). The exit
 * code, and the tree's file when it was built.
 */
export async function treeBuildCommand(options: ImageBuildCommandOptions & { name: string }): Promise<{ code: number; tree: BuiltTree | null }> {
  const { outputDir, cacheDir } = imageBuilderPaths(options.dataDir);
  let tree: BuiltTree | null = null;
  const code = await runBuildCommand(options, async ({ log, signal, out }) => {
    tree = await buildTree({ name: options.name, outputDir, cacheDir, log, signal, ...commonInputs(options) });
    out.line(`built ${tree.path}: ${tree.bytes} bytes, sha256 ${tree.sha256}`);
    out.line(`  debian    ${tree.debianVersion}, kernel ${tree.kernel}; ${tree.packages} packages; built in ${tree.buildSeconds} s`);
  });
  return { code, tree };
}

const commonInputs = (options: ImageBuildCommandOptions) => ({
  ...(options.extraPackages !== undefined && { extraPackages: options.extraPackages }),
  ...(options.postInstallScript !== undefined && { postInstallScript: options.postInstallScript }),
  ...(options.mirror !== undefined && { mirror: options.mirror }),
  ...(options.refreshBase !== undefined && { refreshBase: options.refreshBase }),
});

/** Runs a build with its output shown or kept for a failure, Ctrl-C turned into a clean abort; the exit code. */
async function runBuildCommand(
  options: ImageBuildCommandOptions,
  build: (b: { log: (line: string) => void; signal: AbortSignal; out: CommandOutput }) => Promise<void>,
): Promise<number> {
  const out = options.out ?? processOutput;
  // Tool output is printed when verbose, otherwise kept so that a failure can show its end.
  const recentToolLines: string[] = [];
  const log = (line: string) => {
    const isToolOutput = line.startsWith(TOOL_OUTPUT_PREFIX);
    if (!isToolOutput || options.verbose) (options.json ? out.error : out.line)(line);
    if (isToolOutput) {
      recentToolLines.push(line);
      if (recentToolLines.length > TAIL_ON_FAILURE) recentToolLines.shift();
    }
  };

  // Ctrl-C must still unmount and detach what the build holds: turn the signals into an abort.
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => controller.abort(new Error(`received ${signal}`));
  const forwardAbort = () => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) forwardAbort();
  else options.signal?.addEventListener('abort', forwardAbort, { once: true });
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await build({ log, signal: controller.signal, out });
    return 0;
  } catch (e) {
    const tail = outputOf(e);
    const shown = tail.length > 0 ? tail.map((l) => TOOL_OUTPUT_PREFIX + l) : options.verbose ? [] : recentToolLines;
    for (const line of shown) out.error(line);
    out.error(`image build failed: ${messageOf(e)}`);
    // Bad input is a usage error; anything else is a failed build.
    return isPlinthError(e) && e.code === 'validation' ? 2 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    options.signal?.removeEventListener('abort', forwardAbort);
  }
}
