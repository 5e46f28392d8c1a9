import type { Generated } from 'kysely';

/**
 * The database as Kysely sees it. Both dialects store the same shapes: timestamps are
 * ISO-8601 UTC text (sortable as text), JSON documents are text, booleans are 0/1.
 */
export interface MachinesTable {
  id: string;
  name: string;
  system_uuid: string | null;
  serial: string | null;
  manufacturer: string | null;
  product_name: string | null;
  asset_tag: string | null;
  facts: string | null;
  state: string;
  target_state: string | null;
  state_deadline: string | null;
  state_entered_at: string;
  last_stage: string | null;
  power_state: string;
  power_read_at: string | null;
  power_source: string | null;
  maintenance: number;
  maintenance_reason: string | null;
  protected: number;
  owner: string | null;
  allocated_at: string | null;
  appliance_id: string | null;
  provider_ref: string | null;
  last_error: string | null;
  identity_conflicts: string | null;
  current_run_id: string | null;
  created_at: string;
  updated_at: string;
  version: number;
  power_expected: string | null;
  /** pxe | http | vmedia, or null: the appliance's (see 0010-boot-method). */
  boot_method: string | null;
  power_drift: number;
  profile_id: string | null;
  match_vars: string | null;
  match_spec_vars: string | null;
  pool_entry_id: string | null;
  match_error: string | null;
  matched_at: string | null;
  quota_held: number;
  deployed_image: string | null;
  deployed_address: string | null;
  /** JSON list of the installed OS's SSH host keys (`type base64`). */
  deployed_host_keys: string | null;
  deployed_at: string | null;
  /** Tree deploys: the role and version the installed system runs. */
  deployed_role: string | null;
  deployed_version: string | null;
  boot_base_url: string | null;
  boot_address: string | null;
}

export interface MachineMacsTable {
  mac: string;
  machine_id: string;
}

/**
 * SQLite only: what substring search looks in, one row per machine, kept by triggers
 * (migration 0016) and indexed by the FTS5 table machine_search. Nothing writes it directly.
 */
export interface MachineSearchRowsTable {
  seq: Generated<number>;
  machine_id: string;
  name: string;
  serial: string | null;
  asset_tag: string | null;
  system_uuid: string | null;
  macs: string;
}

export interface MachineTagsTable {
  machine_id: string;
  key: string;
  value: string;
  /** The machine's name (a rename rewrites it), so a tag's machines come in name order from its index. */
  machine_name: string | null;
}

/** The one event log (migration 0012): every kind of event, `seq` given after commit. */
export interface EventsTable {
  id: Generated<number>;
  seq: number | null;
  type: string;
  machine_id: string | null;
  appliance_id: string | null;
  at: string;
  actor: string;
  action: string;
  from_state: string | null;
  to_state: string | null;
  reason: string | null;
  details: string | null;
}

export interface WebhooksTable {
  id: string;
  url: string;
  /** JSON array of event type prefixes. */
  events: string;
  secret_enc: string;
  cursor: number;
  created_at: string;
  created_by: string | null;
}

export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  event_seq: number;
  event_type: string;
  status: string;
  attempts: Generated<number>;
  next_attempt_at: string;
  claimed_by: string | null;
  claimed_until: string | null;
  last_status: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
}

export interface RunsTable {
  id: string;
  machine_id: string;
  kind: string;
  status: string;
  steps: string;
  params: string;
  error: string | null;
  token_hash: string | null;
  reused_from: string | null;
  created_by: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  callback_hash: string | null;
  token_epoch: number;
  /** bigint: PostgreSQL hands it back as text, read it with Number(). */
  log_bytes: number | string;
  callback_sealed: string | null;
}

export interface RunArtifactsTable {
  run_id: string;
  name: string;
  content_type: string;
  body: string;
  sha256: string;
  created_at: string;
}

export interface RunLogsTable {
  id: Generated<number>;
  run_id: string;
  at: string;
  stream: string;
  line: string;
}

export interface ApiTokensTable {
  id: string;
  name: string;
  role: string;
  token_hash: string;
  created_at: string;
  created_by: string | null;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

export interface BootAttemptsTable {
  seq: Generated<number>;
  id: string;
  machine_id: string;
  run_id: string | null;
  started_at: string;
  remote_addr: string | null;
  platform: string | null;
  arch: string | null;
  boot_mac: string | null;
  decision: string;
}

export interface BootTraceTable {
  id: Generated<number>;
  machine_id: string;
  attempt_id: string | null;
  run_id: string | null;
  at: string;
  stage: string;
  detail: string | null;
}

export interface BootChainsTable {
  nonce: string;
  at: string;
  remote_addr: string | null;
}

export interface AppliancesTable {
  id: string;
  name: string;
  type: string;
  address: string;
  username: string | null;
  password_enc: string | null;
  insecure: number;
  ca_cert: string | null;
  options: string | null;
  site: string | null;
  created_at: string;
  updated_at: string;
  /** ok | auth | unreachable | error | unknown (see 0008-appliance-health). */
  health: string;
  health_error: string | null;
  health_at: string | null;
  /** pxe | http | vmedia: the default of its machines (see 0010-boot-method). */
  boot_method: string;
}

export interface ProviderJobsTable {
  seq: Generated<number>;
  id: string;
  appliance_id: string;
  machine_id: string | null;
  run_id: string | null;
  site: string | null;
  kind: string;
  params: string;
  status: string;
  attempts: number;
  claimed_by: string | null;
  lease_until: string | null;
  deadline: string;
  result: string | null;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

export interface ManagersTable {
  site: string;
  last_seen: string;
  version: string | null;
  address: string | null;
  /** The site's cache as its machines reach it; null: the manager keeps no cache. */
  cache_url: string | null;
  /** JSON: the cache's last report (protocol/site-cache.ts). */
  cache_report: string | null;
  cache_seen: string | null;
}

export interface ImagesTable {
  id: string;
  name: string;
  kind: string;
  file: string;
  source_format: string;
  size_bytes: number | string;
  sha256: string;
  firmware: string | null;
  manifest: string | null;
  created_at: string;
  /** Disk images: whole-disk or partition (images/store.ts); null for the other kinds. */
  layout: string | null;
}

export interface TemplateOverridesTable {
  id: string;
  scope: string;
  scope_key: string;
  kind: string;
  name: string;
  body: string;
  created_at: string;
  updated_at: string;
}

export interface ProfilesTable {
  id: string;
  name: string;
  position: number;
  spec: string;
  spec_source: string | null;
  quota: number | null;
  pool_id: string | null;
  release_returns_entry: number;
  deploy: string;
  description: string | null;
  created_at: string;
  updated_at: string;
}

/** One row: the version of the profile and pool definitions (migration 0023, profiles/profile-cache.ts). */
export interface ProfilesVersionTable {
  id: number;
  version: number;
}

export interface PoolsTable {
  id: string;
  name: string;
  model: string | null;
  description: string | null;
  created_at: string;
  updated_at: string;
}

export interface PoolEntriesTable {
  id: string;
  pool_id: string;
  position: number;
  data: string;
  original: string;
  used: number;
  machine_id: string | null;
  allocated_at: string | null;
}

/** The script library (0011-scripts). `inspect` 0/1: run in every inspection. */
export interface ScriptsTable {
  name: string;
  content: string;
  inspect: number;
  timeout_seconds: number;
  description: string | null;
  created_at: string;
  updated_at: string;
}

/** What one run of a script on a machine gave; `files` is JSON. */
export interface ScriptResultsTable {
  id: Generated<number>;
  machine_id: string;
  run_id: string;
  name: string;
  exit_code: number | null;
  timed_out: number;
  duration_ms: number;
  output: string;
  files: string;
  finished_at: string;
}

/** A rolling upgrade of a role's machines to a version (trees/rolls.ts). */
export interface TreeRollsTable {
  id: string;
  role: string;
  to_version: string;
  parallel: number;
  /** running, succeeded, failed or stopped. */
  state: string;
  created_at: string;
  created_by: string;
  finished_at: string | null;
  failed_machine_id: string | null;
  failure: string | null;
  /** How long each machine has, from being asked, to report the roll's version. */
  deadline_seconds: number;
}

/** A machine's place in a roll. */
export interface TreeRollMachinesTable {
  roll_id: string;
  machine_id: string;
  position: number;
  /** pending, upgrading, upgraded or failed. */
  state: string;
  /** 1 while the roll runs (one active roll per machine). */
  active: number;
  from_version: string;
  /** When it was asked (became upgrading). */
  started_at: string | null;
  finished_at: string | null;
  message: string | null;
  /** started_at plus the roll's deadline: upgrading past it, the machine fails the roll. */
  deadline_at: string | null;
  /** When its host first polled while it was upgrading (and was told the version). */
  polled_at: string | null;
}

export interface Database {
  machines: MachinesTable;
  machine_macs: MachineMacsTable;
  machine_tags: MachineTagsTable;
  machine_search_rows: MachineSearchRowsTable;
  events: EventsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  runs: RunsTable;
  run_artifacts: RunArtifactsTable;
  run_logs: RunLogsTable;
  api_tokens: ApiTokensTable;
  boot_attempts: BootAttemptsTable;
  boot_trace: BootTraceTable;
  boot_chains: BootChainsTable;
  appliances: AppliancesTable;
  provider_jobs: ProviderJobsTable;
  managers: ManagersTable;
  profiles: ProfilesTable;
  profiles_version: ProfilesVersionTable;
  pools: PoolsTable;
  pool_entries: PoolEntriesTable;
  images: ImagesTable;
  template_overrides: TemplateOverridesTable;
  scripts: ScriptsTable;
  script_results: ScriptResultsTable;
  tree_rolls: TreeRollsTable;
  tree_roll_machines: TreeRollMachinesTable;
}
