import type { Db } from '../store/database.js';
import { fromJson } from '../store/database.js';
import type { DeployConfig } from './deploy-config.js';

/**
 * What the deploy of a machine takes from matching: its profile's name and deploy
 * configuration, and its variables (the pool entry's fields included). The installer files
 * are named as a deploy request names them (`kernel`, `initrd`: an image-store name or URL).
 */
export interface MachineDeployProfile {
  profile: string | null;
  vars: Record<string, unknown>;
  deploy: (Omit<DeployConfig, 'installer'> & { installer?: { kernel?: string; initrd?: string } }) | null;
}

export async function lookupProfileDeploy(db: Db, machine: { id: string }): Promise<MachineDeployProfile> {
  const row = await db
    .selectFrom('machines')
    .leftJoin('profiles', 'profiles.id', 'machines.profile_id')
    .select(['profiles.name as profile', 'profiles.deploy as deploy', 'machines.match_vars as vars'])
    .where('machines.id', '=', machine.id)
    .executeTakeFirst();
  const vars = fromJson<Record<string, unknown>>(row?.vars, {});
  if (!row?.profile) return { profile: null, vars, deploy: null };
  const { installer, ...rest } = fromJson<DeployConfig>(row.deploy, {});
  const files = installer ? { ...(installer.kernelUrl ? { kernel: installer.kernelUrl } : {}), ...(installer.initrdUrl ? { initrd: installer.initrdUrl } : {}) } : null;
  return { profile: row.profile, vars, deploy: { ...rest, ...(files ? { installer: files } : {}) } };
}
