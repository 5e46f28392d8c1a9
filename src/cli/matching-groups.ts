import type { CommandRegistrar } from './context.js';
import { registerProfileList } from './profile-list.js';
import { registerProfileShow } from './profile-show.js';
import { registerProfileApply } from './profile-apply.js';
import { registerProfileDelete } from './profile-delete.js';
import { registerProfileExplain } from './profile-explain.js';
import { registerProfileSimulate } from './profile-simulate.js';
import { registerPoolList } from './pool-list.js';
import { registerPoolShow } from './pool-show.js';
import { registerPoolApply } from './pool-apply.js';
import { registerPoolDelete } from './pool-delete.js';
import { registerPoolExpand } from './pool-expand.js';
import { registerSpecMatch } from './spec-match.js';
import { registerEdeployResolve } from './edeploy-resolve.js';
import { registerEdeployImport } from './edeploy-import.js';

/** `plinth profile|pool|spec|edeploy ...`: matching (docs/matching.md). */
export const MATCHING_GROUPS: { noun: string; description: string; verbs: CommandRegistrar[] }[] = [
  {
    noun: 'profile',
    description: 'profiles: eDeploy specs tried in order, with quotas, pools and deploy configuration',
    verbs: [registerProfileList, registerProfileShow, registerProfileApply, registerProfileDelete, registerProfileExplain, registerProfileSimulate],
  },
  { noun: 'pool', description: "pools (eDeploy's CMDB): entries handed to matched machines", verbs: [registerPoolList, registerPoolShow, registerPoolApply, registerPoolDelete, registerPoolExpand] },
  { noun: 'spec', description: 'eDeploy spec lists', verbs: [registerSpecMatch] },
  { noun: 'edeploy', description: 'eDeploy configuration directories', verbs: [registerEdeployResolve, registerEdeployImport] },
];
