/**
 * Profiles and pools in the database (docs/matching.md): matching at the end of inspection,
 * quotas and pool entries through the lifecycle, the API's service, and eDeploy CONFIGDIR
 * import. The matching rules themselves are src/matching/.
 */
export { MatchingService, takeQuotaForDeploy, releaseMatchOfDeletedMachine } from './matching.js';
export type { DeployQuota } from './matching.js';
export { ProfileService } from './service.js';
export type { ApplyOutcome } from './service.js';
export { lookupProfileDeploy } from './deploy-lookup.js';
export type { MachineDeployProfile } from './deploy-lookup.js';
export { DeployConfigSchema, RootDeviceHintsSchema, isDeployConfig } from './deploy-config.js';
export type { DeployConfig, RootDeviceHints } from './deploy-config.js';
export { readEdeployConfigDir } from './edeploy-dir.js';
export type { EdeployImport } from './edeploy-dir.js';
export { chooseEntry, selectProfileFor, freedData, noMatchMessage } from './allocation.js';
export type { EntryState, ProfileCandidate, Holding, Selection } from './allocation.js';
