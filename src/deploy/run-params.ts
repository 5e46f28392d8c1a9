import { createHash } from 'node:crypto';
import type { AgentMethod, DeployMethod, OnSuccess, RootDeviceHints } from '../protocol/deploy.js';
import type { DiskLayout } from '../protocol/disk-layout.js';
import type { MulticastTransport, Script } from '../protocol/agent.js';

/**
 * What a deploy run carries from its preparation (DeployService) to its machine
 * (deploy-runs.ts): the run's recorded parameters and the callback secret's placeholder.
 */

/**
 * What rendered artifacts carry where the run's callback secret goes. The secret is minted
 * per run and sealed on the run row; it replaces this placeholder only on the way to the
 * machine (its native installer's script and artifacts, the agent's hello). Stored artifacts
 * never contain it — readers see the placeholder, and `--reuse-run` copies them byte for byte
 * while the new run gets its own secret.
 */
export const CALLBACK_PLACEHOLDER = 'plcb_run-secret-placeholder';

/** What the run records, beyond what the agent needs. */
export interface DeployRunParams extends Record<string, unknown> {
  method: DeployMethod;
  image: string | null;
  imageSha256: string | null;
  imageSize: number | null;
  imageUrl: string | null;
  /** SHA-256 of the image's chunk index (images served by the controller). */
  imageIndexSha256?: string | null;
  /** The agent keeps the chunks the disk already holds (a redeploy of the same image). */
  differential?: boolean;
  rootDeviceHints: RootDeviceHints | null;
  /** keep-partitions (a console install of a partition image): the partition of the root disk the image goes into; the others are kept. */
  partition?: string;
  /** Added to the installed system's kernel command line (image deploys: by the agent). */
  kernelArgs?: string | null;
  profile: string | null;
  sshKeyCount: number;
  reuseRun: string | null;
  /** The multicast session this run was handed (its agent receives from it while it waits for receivers). */
  multicast?: { session: string; transport?: MulticastTransport; portbase: number; maxWaitSeconds: number } | null;
  prepareError: { code: string; message: string } | null;
  /** Tree deploys: the tree (null until found in the store), the layout and ONSUCCESS. */
  tree?: { role: string; version: string } | null;
  diskLayout?: DiskLayout | null;
  onSuccess?: OnSuccess;
  /** The configure step's scripts (image and tree deploys), run by the agent before the disks. */
  configureScripts?: Script[];
}

/** The iPXE script that starts each installer-native method's installer. */
export const IPXE_TEMPLATE: Record<Exclude<DeployMethod, AgentMethod>, string> = {
  preseed: 'debian-installer',
  kickstart: 'anaconda',
  autoinstall: 'ubuntu-autoinstall',
};

export const sha256Hex = (s: string) => createHash('sha256').update(s).digest('hex');

/** An artifact's body with the run's callback secret in place of the placeholder. */
export function withCallbackSecret(body: string, secret: string | null): string {
  return secret ? body.replaceAll(CALLBACK_PLACEHOLDER, secret) : body;
}
