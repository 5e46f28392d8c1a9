import type { BuiltinKind, TemplateKind } from '../kinds.js';
import { AUTOINSTALL_TEMPLATES } from './autoinstall.js';
import { CLOUD_INIT_TEMPLATES } from './cloud-init.js';
import { IPXE_TEMPLATES } from './ipxe.js';
import { KICKSTART_TEMPLATES } from './kickstart.js';
import { PRESEED_TEMPLATES } from './preseed.js';
import { SCRIPT_TEMPLATES } from './script.js';

/**
 * The built-in templates and snippets, by kind. They are TypeScript string constants rather
 * than files so that they are part of the module graph: `tsc` compiles them into dist/ with
 * everything else, nothing has to be copied or found on disk at run time, and a missing one is
 * a compile error rather than an ENOENT on a deploy.
 */
export const BUILTIN: Record<TemplateKind, BuiltinKind> = {
  ipxe: IPXE_TEMPLATES,
  'cloud-init': CLOUD_INIT_TEMPLATES,
  kickstart: KICKSTART_TEMPLATES,
  preseed: PRESEED_TEMPLATES,
  autoinstall: AUTOINSTALL_TEMPLATES,
  script: SCRIPT_TEMPLATES,
};
