/**
 * iPXE scripts, as pure functions of their inputs (golden-tested). Every script that fetches
 * something over HTTP retries with a growing pause, so a transient failure of the controller
 * or the network does not strand a machine at its firmware prompt.
 */

/** Characters iPXE treats specially inside script arguments. */
function ipxeSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').replace(/[$&|#]/g, '_');
}

/**
 * A URL on an iPXE line. iPXE splits lines on spaces, expands `${…}` everywhere and has no
 * escape for `$`, so anything a URL does not need raw (spaces, `$`, quotes, `|`, control and
 * non-ASCII characters) is percent-encoded: the URL stays the same URL, and one word.
 */
export function ipxeUrl(url: string): string {
  return url.replace(/[^A-Za-z0-9\-._~:/?#[\]@!&'()*+,;=%]/gu, (c) => encodeURIComponent(c));
}

/** Query parameters iPXE fills in from its settings: identity, every NIC's MAC, firmware. */
export const IDENTITY_QUERY = [
  'uuid=${uuid}',
  'serial=${serial:uristring}',
  'asset=${asset:uristring}',
  'manufacturer=${manufacturer:uristring}',
  'product=${product:uristring}',
  'mac=${netX/mac}',
  ...Array.from({ length: 8 }, (_, i) => `mac${i}=\${net${i}/mac}`),
  'arch=${buildarch}',
  'platform=${platform}',
].join('&');

/**
 * The script DHCP points iPXE at (`/boot.ipxe`): chain to this machine's own script,
 * passing everything iPXE knows about it.
 */
export function chainScript(baseUrl: string, nonce: string): string {
  return `#!ipxe
# Plinth: identify this machine and fetch the script the controller chose for it.
set plinth-base ${ipxeUrl(baseUrl)}
set attempt:int32 0
:retry
inc attempt
chain --autofree \${plinth-base}/boot/machine.ipxe?${IDENTITY_QUERY}&chain=${nonce}&attempt=\${attempt} && goto done ||
echo Plinth: could not fetch this machine's boot script (attempt \${attempt}); retrying
iseq \${attempt} 30 && goto giveup ||
sleep \${attempt}
goto retry
:giveup
echo Plinth: the controller at \${plinth-base} did not answer; booting from local disk
sleep 10
:done
exit
`;
}

/** A script that fetches files may fail; this wraps a block so it is retried as a whole. */
function withRetry(label: string, body: string[], onGiveUp: string): string {
  return `set attempt:int32 0
:${label}
inc attempt
${body.map((l) => `${l} || goto ${label}-failed`).join('\n')}
:${label}-failed
echo Plinth: ${label} failed (attempt \${attempt}); retrying
iseq \${attempt} 20 && goto ${label}-giveup ||
sleep \${attempt}
goto ${label}
:${label}-giveup
${onGiveUp}
`;
}

export interface InstallerBoot {
  machineName: string;
  runKind: string;
  kernelUrl: string;
  initrdUrl: string;
  /** Kernel command line (already containing the controller URL, run id and token). */
  cmdline: string;
  /** Where to load each file from when the first URLs fail (the controller, when they name the site's cache). */
  fallback?: { kernelUrl: string; initrdUrl: string };
}

/** Boots Plinth's installer for a run. */
export function installerScript(b: InstallerBoot): string {
  const kernel = (url: string) => `kernel ${ipxeUrl(url)} initrd=initrd.img ${b.cmdline}`;
  const initrd = (url: string) => `initrd --name initrd.img ${ipxeUrl(url)}`;
  const lines = b.fallback
    ? [`${kernel(b.kernelUrl)} || ${kernel(b.fallback.kernelUrl)}`, `${initrd(b.initrdUrl)} || ${initrd(b.fallback.initrdUrl)}`]
    : [kernel(b.kernelUrl), initrd(b.initrdUrl)];
  return `#!ipxe
# Plinth: ${ipxeSafe(b.machineName)} boots the installer for its ${ipxeSafe(b.runKind)} run.
echo Plinth: ${ipxeSafe(b.machineName)}: booting the installer (${ipxeSafe(b.runKind)})
${withRetry('installer', [...lines, 'boot'], 'echo Plinth: cannot load the installer; rebooting\nsleep 30\nreboot')}`;
}

/** Hands the machine to its next boot device (the local disk). */
export function localBootScript(machineName: string, why: string): string {
  return `#!ipxe
# Plinth: ${ipxeSafe(machineName)} boots from its local disk (${ipxeSafe(why)}).
echo Plinth: ${ipxeSafe(machineName)}: ${ipxeSafe(why)}; booting from local disk
exit
`;
}

/** For a request the boot service could not tie to a machine: say why, then boot locally. */
export function unidentifiedScript(why: string, title = 'this machine could not be identified'): string {
  return `#!ipxe
# Plinth: ${title}.
echo Plinth: ${ipxeSafe(why)}
echo Plinth: booting from local disk in 30 seconds
sleep 30
exit
`;
}

/** When the controller cannot decide right now (database unreachable, enrolment paused…): wait and ask again. */
export function retryLaterScript(baseUrl: string, why: string, seconds = 15, title = 'the controller could not answer'): string {
  return `#!ipxe
# Plinth: ${title}; this script asks again.
echo Plinth: ${ipxeSafe(why)}; asking again in ${seconds} seconds
sleep ${seconds}
chain --autofree ${ipxeUrl(baseUrl)}/boot.ipxe || exit
`;
}

/**
 * For a machine whose run an installer has already claimed: no ticket (a boot request with
 * the machine's identity is all an impostor needs to send), just wait and ask again, until
 * the controller re-arms the run (its own power cycle, a retry) or the run's deadline fails it.
 */
export function claimedScript(baseUrl: string, machineName: string): string {
  return retryLaterScript(baseUrl, `${machineName}: its run is already held by the installer that claimed it`, 60, 'this run is claimed: no ticket for a boot request');
}

/** For an unknown machine the controller does not enrol (enrolment switched off): say why, then boot locally. */
export function notEnrolledScript(why: string): string {
  return unidentifiedScript(why, 'this machine is not enrolled');
}
