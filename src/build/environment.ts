/**
 * The environments build programs run in. The sbin directories are always searched:
 * debootstrap, depmod, chroot, losetup and mkfs live there and a non-login root shell (sudo,
 * systemd units) often lacks them in PATH.
 */

export const SBIN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const PROXY_VARIABLES = ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'];

/**
 * Nothing of the caller's environment except proxy settings: what runs inside an image's
 * chroot must not pick up the build host's locale or shell settings, or they leak into the
 * image.
 */
export function cleanEnvironment(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: SBIN_PATH, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', HOME: '/root' };
  for (const key of PROXY_VARIABLES) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return { ...env, ...extra };
}

/**
 * The caller's environment with the sbin directories added, the C locale (so that the
 * output parsed, e.g. ldd's, is in one language) and non-interactive Debian packaging.
 */
export function hostEnvironment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const path = [process.env.PATH, SBIN_PATH].filter(Boolean).join(':');
  return { ...process.env, PATH: path, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive', ...extra };
}
