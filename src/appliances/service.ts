import type { Db, Store } from '../store/database.js';
import { fromJson, toJson, uniqueViolation } from '../store/database.js';
import type { AppliancesTable } from '../store/schema.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { PlinthError, duplicate, validation } from '../core/errors.js';
import type { SecretBox } from '../auth/secrets.js';
import { PROVIDER_TYPES, type Endpoint, type ProviderType } from '../providers/types.js';

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
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** Checks the address form each provider type expects, naming the field. */
function validateAddress(type: ProviderType, address: string): void {
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

export class ApplianceService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly secrets: SecretBox,
  ) {}

  async register(input: ApplianceInput): Promise<Appliance> {
    if (!(PROVIDER_TYPES as readonly string[]).includes(input.type)) {
      throw validation('type', `'${input.type}' is not one of ${PROVIDER_TYPES.join(', ')}`);
    }
    const type = input.type as ProviderType;
    validateAddress(type, input.address);
    if (input.caCert && !input.caCert.includes('-----BEGIN CERTIFICATE-----')) throw validation('caCert', 'must be a PEM certificate bundle');
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
      created_at: now,
      updated_at: now,
    };
    try {
      await this.store.db.insertInto('appliances').values(row).execute();
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

  /** Deletes an appliance no machine depends on. */
  async delete(key: string): Promise<Appliance> {
    return this.store.transaction(async (trx) => {
      const r = await this.row(key, trx);
      const linked = await trx.selectFrom('machines').select('name').where('appliance_id', '=', r.id).limit(5).execute();
      if (linked.length) {
        throw new PlinthError('conflict', `appliance ${r.name} controls machines (${linked.map((m) => m.name).join(', ')}${linked.length === 5 ? ', …' : ''}); delete or relink them first`, {
          details: { appliance: r.name, machines: linked.map((m) => m.name) },
        });
      }
      await trx.deleteFrom('appliances').where('id', '=', r.id).execute();
      return toAppliance(r);
    });
  }
}
