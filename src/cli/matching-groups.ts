import type { CommandGroup } from './context.js';

/** `plinth profile|pool|spec|edeploy ...`: matching (docs/matching.md). */
export const MATCHING_GROUPS: CommandGroup[] = [
  {
    noun: 'profile',
    description: 'profiles: eDeploy specs tried in order, with quotas, pools and deploy configuration',
    verbs: () =>
      Promise.all([
        import('./profile-list.js').then((m) => m.registerProfileList),
        import('./profile-show.js').then((m) => m.registerProfileShow),
        import('./profile-apply.js').then((m) => m.registerProfileApply),
        import('./profile-delete.js').then((m) => m.registerProfileDelete),
        import('./profile-explain.js').then((m) => m.registerProfileExplain),
        import('./profile-simulate.js').then((m) => m.registerProfileSimulate),
      ]),
  },
  {
    noun: 'pool',
    description: "pools (eDeploy's CMDB): entries handed to matched machines",
    verbs: () =>
      Promise.all([
        import('./pool-list.js').then((m) => m.registerPoolList),
        import('./pool-show.js').then((m) => m.registerPoolShow),
        import('./pool-apply.js').then((m) => m.registerPoolApply),
        import('./pool-delete.js').then((m) => m.registerPoolDelete),
        import('./pool-expand.js').then((m) => m.registerPoolExpand),
      ]),
  },
  { noun: 'spec', description: 'eDeploy spec lists', verbs: () => Promise.all([import('./spec-match.js').then((m) => m.registerSpecMatch)]) },
  {
    noun: 'edeploy',
    description: 'eDeploy configuration directories',
    verbs: () =>
      Promise.all([
        import('./edeploy-resolve.js').then((m) => m.registerEdeployResolve),
        import('./edeploy-import.js').then((m) => m.registerEdeployImport),
      ]),
  },
];
