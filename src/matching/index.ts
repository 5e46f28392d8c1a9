/**
 * eDeploy-compatible matching: reading eDeploy's files, matching spec lists against hardware
 * lists, expanding and allocating CMDB pools, profile quotas, eDeploy directory mode, and the
 * functions behind the matching CLI subcommands. Behaviour follows eDeploy except for the nine
 * decisions of the eDeploy semantics note, cited where they apply.
 */

// Matching
export { matchAll, matchSpec, firstUnsatisfiable, HardwareIndex, MAX_BACKTRACK_DEPTH, DEFAULT_MAX_STEPS } from './matcher.js';
export type { MatchOptions, MatchResult, SpecMatch } from './matcher.js';
export { explainMatch } from './explain.js';
export type { MatchExplanation, RuleFailure, RuleFailureKind, NearMiss } from './explain.js';
export { compileSpecs, compileSpec, compileElement, checkElement, describeFailure } from './spec-rules.js';
export type { SpecRule, CompiledSpec, SpecInput, ElementRule, ElementFailure, ElementOutcome } from './spec-rules.js';
export { parseExpression, evaluateExpression, formatExpression, SPEC_FUNCTIONS } from './expression.js';
export type { CallNode, ExprNode, EvalResult, SpecFunction } from './expression.js';

// CMDB pools
export { expandModel, stringRange, CONST_KEY, DEFAULT_MAX_ENTRIES } from './generate.js';
export type { GenerateOptions } from './generate.js';
export { allocateEntry, entryIncludes, isEntryUsed } from './cmdb.js';
export type { Allocation, CmdbEntry } from './cmdb.js';

// The matching engine and its in-memory ledger
export { allocate, allocateSync, chooseEntry, isEligible, freedData, noMatchError, noMatchMessage, PROFILES_LABEL } from './engine.js';
export type { MatchOutcome, EngineOptions, EngineProfile, EntryChoice, EntryRef, EntryState, Holding, Ledger, LedgerOps, MachineToMatch, QuotaOutcome, SyncLedger } from './engine.js';
export { MemoryLedger } from './memory-ledger.js';

// Profiles and state
export { selectProfile, failProfile, resolveProfile, quotaOf } from './profiles.js';
export type { StateEntry, StateCount, Quota, ProfileMatch, Resolution, SelectOptions } from './profiles.js';
export { EdeployError, isEdeployError, CMDB_NO_MATCH_MESSAGE, CMDB_EXHAUSTED_MESSAGE } from './edeploy-errors.js';
export type { EdeployErrorKind } from './edeploy-errors.js';

// Files
export {
  readSpecsText,
  readHwText,
  readCmdbText,
  readStateText,
  readSpecsFile,
  readHwFile,
  readCmdbFile,
  readStateFile,
  formatState,
  formatCmdb,
  formatForPath,
  parseSource,
} from './file-forms.js';
export type { SourceFormat, ReadOptions, CmdbSource } from './file-forms.js';
export { parsePythonLiteral } from './python-literal.js';
export { parseJsonLiteral } from './json-literal.js';
export { parseYamlLiteral } from './yaml-literal.js';
export type { LiteralNode } from './literal-ast.js';
export { formatPython, reprPython } from './python-writer.js';
export { PyTuple, literalToValue, plainToValue, pyEquals } from './python-values.js';
export type { PyValue, PyDict, PyScalar } from './python-values.js';
export { SourceError, isSourceError, formatLocation } from './source-error.js';
export type { SourceLocation, SourcePosition } from './source-error.js';

// eDeploy directory mode and CLI commands
export { resolveInConfigDir, failProfileInConfigDir } from './config-dir.js';
export type { ConfigDirOptions, ConfigDirResolution, FailureResult } from './config-dir.js';
export { acquireLock, withLock, DEFAULT_LOCK_TIMEOUT_MS } from './file-lock.js';
export type { FileLock, LockOptions } from './file-lock.js';
export { specMatchCommand, poolExpandCommand, edeployResolveCommand } from './commands.js';
export type { CommandResult, EdeployResolveOptions } from './commands.js';
