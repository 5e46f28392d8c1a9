export { ManualProvider, ManualActionRequired, createManualProvider, describeManualAction, type ManualAction } from './manual-provider.js';
