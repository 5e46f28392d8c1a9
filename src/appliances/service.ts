import { DEFAULT_BOOT_METHOD, effectiveBootMethod, type BootMethod } from '../core/boot-method.js';
import type { Db, Store } from '../store/database.js';
import { fromJson, toJson, uniqueViolation } from '../store/database.js';
import type { AppliancesTable } from '../store/schema.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { afterId, pageOf, type Page } from '../core/pagination.js';
import { PlinthError, duplicate, validation } from '../core/errors.js';
import type { SecretBox } from '../auth/secrets.js';
import { PROVIDER_TYPES, type Endpoint, type ProviderType } from '../providers/types.js';
import type { Actor } from '../inventory/machine.js';
import { actorLabel } from '../inventory/machine.js';
import { updateMachineRow } from '../inventory/machine-rows.js';
import { recordEvent } from '../inventory/events.js';
import { checkProviderRef } from '../inventory/provider-link.js';
import { listApplianceEvents, recordApplianceEvent, type ApplianceEvent, type ApplianceHealth } from '../power/appliance-health.js';

/** Column → API field, for the fields an update event names. */
const FIELD_NAMES: Record<string, string> = { password_enc: 'password', ca_cert: 'caCert', boot_method: 'bootMethod' };

/**
 * Appliances (hardcap's word): whatever controls machines' power and boot — one BMC, a
 * hypervisor, the local QEMU lab. Credentials are encrypted at rest and never leave the
 * controller except as an Endpoint handed to a provider (or to the site's manager).
 */
export interface Appliance {
  id: string;
  name: string;
  type: ProviderType;
  address: string;
  username: string | null;
  hasPassword: boolean;
  insecure: boolean;
  caCert: string | null;
  options: Record<string, unknown>;
  /** Remote site whose manager runs this appliance's providers; null: the controller runs them. */
  site: string | null;
  /** How the lifecycle boots its machines into the installer (a machine may override it). */
  bootMethod: BootMethod;
  /** What the last provider calls said about the appliance (see power/appliance-health.ts). */
  health: ApplianceHealth;
  /** The provider's message for the failure that set `health` (null when ok or unknown). */
  healthError: string | null;
  /** When `health` last changed. */
  healthAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ApplianceInput {
  name: string;
  type: string;
  address: string;
  username?: string | null;
  password?: string | null;
  insecure?: boolean;
  caCert?: string | null;
  options?: Record<string, unknown>;
  site?: string | null;
  bootMethod?: BootMethod;
}

/** What `update` may change: everything but the name and type (the power layer keeps an appliance's sessions and breaker by name). */
export type AppliancePatch = Partial<Omit<ApplianceInput, 'name' | 'type'>>;

/** Machines moved from one appliance to another. */
export interface ApplianceMove {
  from: string;
  to: string;
  machines: Array<{ id: string; name: string; ref: string | null }>;
}

const toAppliance = (r: AppliancesTable): Appliance => ({
  id: r.id,
  name: r.name,
  type: r.type as ProviderType,
  address: r.address,
  username: r.username,
  hasPassword: r.password_enc !== null,
  insecure: Boolean(r.insecure),
  caCert: r.ca_cert,
  options: fromJson(r.options, {}),
  site: r.site,
  bootMethod: effectiveBootMethod(null, r.boot_method),
  health: r.health as ApplianceHealth,
  healthError: r.health_error,
  healthAt: r.health_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** Checks the address form each provider type expects, naming the field. */
export function validateAddress(type: ProviderType, address: string): void {
  const mustBeUrl = type === 'redfish' || type === 'proxmox' || type === 'vsphere';
  if (mustBeUrl) {
    let u: URL;
    try {
      u = new URL(address);
    } catch {
      throw validation('address', `'${address}' is not a URL (a ${type} appliance needs e.g. https://bmc.example.net)`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw validation('address', `'${address}' must be an http(s) URL`);
  } else if (type === 'ipmi') {
    if (!/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(address)) throw validation('address', `'${address}' is not host[:port]`);
  } else if (type === 'libvirt') {
    if (!/^[a-z0-9+]+:\/\//.test(address)) throw validation('address', `'${address}' is not a libvirt URI (e.g. qemu+ssh://root@host/system)`);
  } else if (type === 'qemu') {
    if (!address.startsWith('/')) throw validation('address', `'${address}' must be the absolute path of a lab directory`);
  }
}

function checkCaCert(caCert: string | null | undefined): void {
  if (caCert && !caCert.includes('-----BEGIN CERTIFICATE-----')) throw validation('caCert', 'must be a PEM certificate bundle');
}

export class ApplianceService {
  private readonly updatedListeners: Array<(a: Appliance) => void> = [];

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly secrets: SecretBox,
  ) {}

  /** Called after an appliance's settings changed (the composition root drops its kept provider and breaker). */
  onUpdated(listener: (a: Appliance) => void): void {
    this.updatedListeners.push(listener);
  }

  /** Registers an appliance; in the caller's transaction when `db` is given (a machine import). */
  async register(input: ApplianceInput, db: Db = this.store.db): Promise<Appliance> {
    if (!(PROVIDER_TYPES as readonly string[]).includes(input.type)) {
      throw validation('type', `'${input.type}' is not one of ${PROVIDER_TYPES.join(', ')}`);
    }
    const type = input.type as ProviderType;
    validateAddress(type, input.address);
    checkCaCert(input.caCert);
    const now = iso(this.clock.now());
    const row: AppliancesTable = {
      id: newId(),
      name: input.name,
      type,
      address: input.address,
      username: input.username ?? null,
      password_enc: input.password ? this.secrets.encrypt(input.password) : null,
      insecure: input.insecure ? 1 : 0,
      ca_cert: input.caCert ?? null,
      options: toJson(input.options ?? {}),
      site: input.site ?? null,
      boot_method: input.bootMethod ?? DEFAULT_BOOT_METHOD,
      created_at: now,
      updated_at: now,
      health: 'unknown',
      health_error: null,
      health_at: null,
    };
    try {
      await db.insertInto('appliances').values(row).execute();
    } catch (e) {
      if (uniqueViolation(e)) throw duplicate('name', input.name);
      throw e;
    }
    return toAppliance(row);
  }

  async list(): Promise<Appliance[]> {
    return (await this.store.db.selectFrom('appliances').selectAll().orderBy('name').execute()).map(toAppliance);
  }

  private async row(key: string, db: Db = this.store.db): Promise<AppliancesTable> {
    const r = await db
      .selectFrom('appliances')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', key), eb('name', '=', key)]))
      .executeTakeFirst();
    if (!r) throw new PlinthError('not_found', `appliance '${key}' not found`, { details: { appliance: key } });
    return r;
  }

  async get(key: string): Promise<Appliance> {
    return toAppliance(await this.row(key));
  }

  /** How a provider reaches the appliance, password decrypted. For providers and managers only. */
  async endpoint(key: string): Promise<{ appliance: Appliance; endpoint: Endpoint }> {
    const r = await this.row(key);
    const endpoint: Endpoint = {
      address: r.address,
      ...(r.username ? { username: r.username } : {}),
      ...(r.password_enc ? { password: this.secrets.decrypt(r.password_enc) } : {}),
      ...(r.insecure ? { insecure: true } : {}),
      ...(r.ca_cert ? { caCert: r.ca_cert } : {}),
      options: fromJson(r.options, {}),
    };
    return { appliance: toAppliance(r), endpoint };
  }

  /**
   * Changes an appliance's address, credentials, TLS settings, options or site (a password
   * rotated on the BMC, a new certificate). The password is sealed like at registration;
   * `password: null` clears it. Its health goes back to `unknown` (the next call, or
   * `plinth appliance check`, says), so a sync left alone for refused credentials resumes;
   * an `appliance-updated` event names the fields changed, never their values.
   */
  async update(key: string, patch: AppliancePatch, actor: Actor): Promise<Appliance> {
    const updated = await this.store.transaction((trx) => this.updateIn(trx, key, patch, actor));
    this.updated(updated);
    return updated;
  }

  /** Tells the listeners an appliance changed; after the commit of `updateIn`'s transaction. */
  updated(a: Appliance): void {
    for (const l of this.updatedListeners) l(a);
  }

  /** `update` inside the caller's transaction; the caller calls `updated` once it committed. */
  async updateIn(trx: Db, key: string, patch: AppliancePatch, actor: Actor): Promise<Appliance> {
    const r = await this.row(key, trx);
    const type = r.type as ProviderType;
    const changes: Partial<AppliancesTable> = {};
    if (patch.address !== undefined) {
      validateAddress(type, patch.address);
      changes.address = patch.address;
    }
    if (patch.username !== undefined) changes.username = patch.username || null;
    if (patch.password !== undefined) changes.password_enc = patch.password ? this.secrets.encrypt(patch.password) : null;
    if (patch.insecure !== undefined) changes.insecure = patch.insecure ? 1 : 0;
    if (patch.caCert !== undefined) {
      checkCaCert(patch.caCert);
      changes.ca_cert = patch.caCert || null;
    }
    if (patch.options !== undefined) changes.options = toJson(patch.options);
    if (patch.site !== undefined) changes.site = patch.site || null;
    // How its machines boot says nothing of reaching the appliance: its health stays.
    const reachChanged = Object.keys(changes).length > 0;
    if (patch.bootMethod !== undefined) changes.boot_method = patch.bootMethod;
    const fields = Object.keys(changes).map((c) => FIELD_NAMES[c] ?? c);
    if (fields.length === 0) throw validation('body', 'nothing to change: give address, username, password, insecure, caCert, options, site or bootMethod');
    const now = iso(this.clock.now());
    await trx
      .updateTable('appliances')
      .set({ ...changes, updated_at: now, ...(reachChanged ? { health: 'unknown', health_error: null, health_at: now } : {}) })
      .where('id', '=', r.id)
      .execute();
    // Jobs still waiting go to whoever runs the appliance now.
    if (changes.site !== undefined) await trx.updateTable('provider_jobs').set({ site: changes.site }).where('appliance_id', '=', r.id).where('status', '=', 'queued').execute();
    await recordApplianceEvent(trx, {
      applianceId: r.id,
      at: now,
      actor: actorLabel(actor),
      action: 'appliance-updated',
      reason: `changed ${fields.join(', ')}; health ${r.health} → unknown until the next call`,
      details: { fields, from: r.health, to: 'unknown' },
    });
    return toAppliance(await this.row(r.id, trx));
  }

  /**
   * The appliance of a type at an address, with its credentials decrypted, or null: how an
   * import finds a BMC registered already and whether its credentials changed. Stays in the
   * controller.
   */
  async atAddress(db: Db, type: string, address: string): Promise<{ appliance: Appliance; username: string | null; password: string | null } | null> {
    const r = await db.selectFrom('appliances').selectAll().where('type', '=', type).where('address', '=', address).orderBy('name').executeTakeFirst();
    if (!r) return null;
    return { appliance: toAppliance(r), username: r.username, password: r.password_enc ? this.secrets.decrypt(r.password_enc) : null };
  }

  /** Whether an appliance has this name (in the caller's transaction). */
  async nameTaken(db: Db, name: string): Promise<boolean> {
    return (await db.selectFrom('appliances').select('id').where('name', '=', name).executeTakeFirst()) !== undefined;
  }

  /** An appliance by name or id, or null (in the caller's transaction). */
  async find(db: Db, key: string): Promise<Appliance | null> {
    return this.row(key, db).then(toAppliance, (e: unknown) => {
      if (e instanceof PlinthError && e.code === 'not_found') return null;
      throw e;
    });
  }

  /** An appliance's history (health changes, updates, machines moved), oldest first. */
  async events(key: string, page: { limit: number; cursor?: string | undefined }): Promise<Page<ApplianceEvent>> {
    const r = await this.row(key);
    const after = afterId(page.cursor);
    const rows = await listApplianceEvents(this.store.db, r.id, { limit: page.limit + 1, ...(after !== undefined ? { after } : {}) });
    return pageOf(rows, page.limit, (e) => String(e.id));
  }

  /**
   * Moves machines from one appliance to another (a BMC or hypervisor replaced): the named
   * machines, or all of `from`'s. Each keeps its reference unless `ref` is given (one machine
   * only), and the reference must stay on the new appliance's endpoint, as when it is set
   * on the machine. All or nothing: a machine that does not fit, or whose power or boot job
   * is still queued or running, refuses the whole move. Afterwards an emptied appliance can be
   * deleted and its name registered again.
   */
  async move(fromKey: string, o: { to: string; machines?: string[]; ref?: string; actor: Actor }): Promise<ApplianceMove> {
    return this.store.transaction(async (trx) => {
      const from = await this.row(fromKey, trx);
      const to = await this.row(o.to, trx).catch((e: unknown) => {
        throw e instanceof PlinthError && e.code === 'not_found' ? validation('to', `no appliance is named '${o.to}' (plinth appliance list shows them)`) : e;
      });
      if (to.id === from.id) throw validation('to', `machines of ${from.name} are already there`);
      // A reference means something to its own type of appliance only: across types, say the new one.
      if (to.type !== from.type && o.ref === undefined) {
        throw validation('to', `${to.name} is a ${to.type} appliance and ${from.name} a ${from.type} one: move one machine at a time with its new reference (ref)`);
      }
      let q = trx.selectFrom('machines').select(['id', 'name', 'state', 'provider_ref']).where('appliance_id', '=', from.id);
      if (o.machines) {
        if (o.machines.length === 0) throw validation('machines', 'name at least one machine, or leave it out to move them all');
        const keys = o.machines;
        q = q.where((eb) => eb.or([eb('name', 'in', keys), eb('id', 'in', keys)]));
      }
      // Locked, so that no transition queues a job through the old appliance meanwhile (on
      // SQLite the write transaction already holds the lock).
      if (this.store.dialect === 'postgres') q = q.forUpdate();
      const machines = await q.orderBy('name').execute();
      if (o.machines) {
        const missing = o.machines.filter((k) => !machines.some((m) => m.name === k || m.id === k));
        if (missing.length) throw validation('machines', `${missing.join(', ')}: not a machine of ${from.name}`);
      }
      if (machines.length === 0) throw validation('from', `${from.name} controls no machine`);
      if (o.ref !== undefined && machines.length !== 1) throw validation('ref', 'a new reference can be given for one machine only');
      const busy = await trx
        .selectFrom('provider_jobs')
        .innerJoin('machines', 'machines.id', 'provider_jobs.machine_id')
        .select('machines.name')
        .where('provider_jobs.appliance_id', '=', from.id)
        .where('provider_jobs.status', 'in', ['queued', 'running'])
        .where('provider_jobs.machine_id', 'in', machines.map((m) => m.id))
        .execute();
      if (busy.length) {
        const names = [...new Set(busy.map((b) => b.name))];
        throw new PlinthError('conflict', `a power or boot job of ${names.join(', ')} is still under way on ${from.name}; move once it is done`, { details: { machines: names } });
      }
      const now = iso(this.clock.now());
      const moved: ApplianceMove['machines'] = [];
      for (const m of machines) {
        const ref = o.ref ?? m.provider_ref;
        if (ref !== null) {
          try {
            checkProviderRef(to, ref);
          } catch (e) {
            throw e instanceof PlinthError && e.code === 'validation' ? validation('provider.ref', `machine ${m.name}: ${e.message.replace(/^provider\.ref: /, '')}`, { machine: m.name }) : e;
          }
        }
        await updateMachineRow(trx, m.id, { appliance_id: to.id, provider_ref: ref, power_state: 'unknown', power_drift: 0 }, now);
        await recordEvent(trx, {
          machineId: m.id,
          at: now,
          actor: actorLabel(o.actor),
          action: 'appliance-moved',
          fromState: m.state,
          toState: m.state,
          reason: `from ${from.name} to ${to.name}`,
          details: { from: from.name, to: to.name, ref },
        });
        moved.push({ id: m.id, name: m.name, ref });
      }
      const names = moved.map((m) => m.name);
      for (const [a, reason] of [
        [from, `${names.length} machine(s) moved to ${to.name}`],
        [to, `${names.length} machine(s) moved from ${from.name}`],
      ] as const) {
        await recordApplianceEvent(trx, { applianceId: a.id, at: now, actor: actorLabel(o.actor), action: 'machines-moved', reason, details: { from: from.name, to: to.name, machines: names } });
      }
      return { from: from.name, to: to.name, machines: moved };
    });
  }

  /** Deletes an appliance no machine depends on. */
  async delete(key: string): Promise<Appliance> {
    return this.store.transaction(async (trx) => {
      const r = await this.row(key, trx);
      const linked = await trx.selectFrom('machines').select('name').where('appliance_id', '=', r.id).limit(5).execute();
      if (linked.length) {
        throw new PlinthError('conflict', `appliance ${r.name} controls machines (${linked.map((m) => m.name).join(', ')}${linked.length === 5 ? ', …' : ''}); delete them or move them to another appliance first (plinth appliance move)`, {
          details: { appliance: r.name, machines: linked.map((m) => m.name) },
        });
      }
      await trx.deleteFrom('appliances').where('id', '=', r.id).execute();
      return toAppliance(r);
    });
  }
}
