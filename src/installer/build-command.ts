import { messageOf } from '../core/errors.js';
import { buildInstaller, type BuildInstallerOptions } from './build.js';
import { formatSeconds, formatSize } from './log-format.js';
import { buildInstallerIso, installerIsoDir, isoKernelCmdline } from './iso.js';

export interface InstallerBuildCommandOptions {
  dataDir: string;
  agentBundle: string;
  /** PEM CA certificates for the agent to trust. */
  caBundle?: string | null;
  force?: boolean;
  mirror?: string;
  compression?: BuildInstallerOptions['compression'];
  /** Debian packages, kernel modules and firmware the site adds. */
  extras?: BuildInstallerOptions['extras'];
  /** Also build the ISO for virtual media, for a controller at this URL with these kernel arguments. */
  iso?: { publicUrl: string; kernelArgs: string };
  signal?: AbortSignal;
  /** Where progress and the result go; default process.stdout / process.stderr. */
  out?: (text: string) => void;
  err?: (text: string) => void;
}

/**
 * `plinth installer build`: builds the installer, prints progress (with the time since the
 * start) and the result, and returns the process exit code (0 on success, 1 on failure).
 */
export async function installerBuildCommand(options: InstallerBuildCommandOptions): Promise<number> {
  const out = options.out ?? ((text: string) => void process.stdout.write(text));
  const err = options.err ?? ((text: string) => void process.stderr.write(text));
  const started = Date.now();
  const stamp = () => `[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s]`;
  try {
    const result = await buildInstaller({
      dataDir: options.dataDir,
      agentBundle: options.agentBundle,
      ...(options.caBundle ? { caBundle: options.caBundle } : {}),
      ...(options.force !== undefined ? { force: options.force } : {}),
      ...(options.mirror !== undefined ? { mirror: options.mirror } : {}),
      ...(options.compression !== undefined ? { compression: options.compression } : {}),
      ...(options.extras ? { extras: options.extras } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      log: (line) => out(`${stamp()} ${line}\n`),
    });
    const m = result.manifest;
    const lines = [
      `installer ${result.cacheHit ? 'up to date (cache hit)' : 'built'} in ${formatSeconds(Date.now() - started)}: ${result.dir}`,
      `  kernel     ${result.kernel}  ${formatSize(m.artifacts.kernel.bytes)}  sha256 ${m.artifacts.kernel.sha256}`,
      `             ${m.kernel.package} ${m.kernel.version}, ${m.kernel.modules} modules`,
      `  initramfs  ${result.initramfs}  ${formatSize(result.initramfsBytes)}  sha256 ${m.artifacts.initramfs.sha256}`,
      ...m.layers.map(
        (l) =>
          `    ${l.name.padEnd(6)} layer ${formatSize(l.bytes)} (${formatSize(l.uncompressedBytes)} unpacked, ${m.inputs.compression})  ${
            result.cacheHit || l.cacheHit ? 'from cache' : `built in ${formatSeconds(l.buildMs)}`
          }`,
      ),
      `  node ${m.inputs.node.version}, ${Object.keys(m.packages).length} Debian packages from ${m.inputs.suite}`,
    ];
    const e = options.extras;
    const added = [
      ...(e?.packages?.length ? [`packages ${e.packages.join(' ')}`] : []),
      ...(e?.modules?.length ? [`modules ${e.modules.join(' ')}`] : []),
      ...(e?.firmware?.length ? [`firmware ${e.firmware.join(' ')}`] : []),
    ];
    if (added.length) lines.push(`  added      ${added.join('; ')}`);
    if (options.iso) {
      const r = await buildInstallerIso({
        kernel: result.kernel,
        initrd: result.initramfs,
        cmdline: isoKernelCmdline(options.iso.publicUrl, options.iso.kernelArgs),
        dir: installerIsoDir(options.dataDir),
        installTools: true,
        log: (line) => out(`${stamp()} ${line}\n`),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      lines.push(`  ISO        ${r.path}  ${formatSize(r.bytes)}${r.cacheHit ? '  (cache hit)' : ''}`, `             boots plinth.url=${options.iso.publicUrl.replace(/\/+$/, '')}; served at /boot/installer.iso`);
    }
    out(`${lines.join('\n')}\n`);
    return 0;
  } catch (e) {
    err(`plinth installer build: ${messageOf(e)}\n`);
    return 1;
  }
}
