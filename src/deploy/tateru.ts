import type { Store } from '../store/database.js';
import { PlinthError } from '../core/errors.js';
import type { Actor, Machine } from '../inventory/machine.js';
import type { InventoryService } from '../inventory/service.js';
import { findIdentityCandidates, loadMachine, requireMachine } from '../inventory/machine-rows.js';
import { normalizeUuid, sameUuid } from '../inventory/identity.js';
import { getRun } from '../runs/runs.js';
import type { RunPrincipal } from '../runs/run-tokens.js';
import type { TateruBootInstallerAnswer, TateruMachine } from '../protocol/tateru.js';
import type { Holds, HoldRunParams } from './holds.js';

const PAGE = 500;

/**
 * Tateru's Machine Service (protocol/tateru.ts) over Plinth's inventory and holds: machines
 * found by alias, presented the way Tateru's client reads them, and `boot-installer` as
 * Plinth's boot-installer hold with the one key the client sends. A client's `nonce` is kept
 * with the run it started: the same nonce again answers with that run instead of a second one.
 */
export class TateruMachineService {
  constructor(private readonly d: { store: Store; inventory: InventoryService; holds: Holds }) {}

  /**
   * Machines whose name, serial number, asset tag, system UUID (either byte order) or Plinth
   * id is `alias`; every machine without an alias. Several machines may share a serial
   * (different manufacturers): all are listed, and Tateru's client refuses the ambiguity.
   */
  async find(alias: string | undefined): Promise<Machine[]> {
    if (alias === undefined) return this.all();
    const ids = new Set<string>();
    const byKey = await loadMachine(this.d.store.db, this.d.store.dialect, alias);
    if (byKey) ids.add(byKey.id);
    const candidates = await findIdentityCandidates(this.d.store.db, {
      systemUuid: normalizeUuid(alias),
      serial: alias,
      assetTag: alias,
      manufacturer: null,
      productName: null,
      macs: [],
    });
    for (const c of candidates) ids.add(c.id);
    const found = await Promise.all([...ids].map((id) => requireMachine(this.d.store.db, this.d.store.dialect, id)));
    return found.sort((a, b) => a.name.localeCompare(b.name));
  }

  private async all(): Promise<Machine[]> {
    const out: Machine[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.d.inventory.list({}, { limit: PAGE, ...(cursor ? { cursor } : {}) });
      out.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return out;
  }

  /** The machine with this Tateru `uuid`: its system UUID (either byte order), else its Plinth id. */
  async get(uuid: string): Promise<Machine> {
    const normal = normalizeUuid(uuid);
    if (normal) {
      const byUuid = (await findIdentityCandidates(this.d.store.db, { systemUuid: normal, serial: null, assetTag: null, manufacturer: null, productName: null, macs: [] })).filter((c) =>
        sameUuid(c.systemUuid, normal),
      );
      if (byUuid.length === 1) return requireMachine(this.d.store.db, this.d.store.dialect, byUuid[0]!.id);
      const byId = await loadMachine(this.d.store.db, this.d.store.dialect, uuid);
      if (byId && byId.id === uuid.toLowerCase()) return byId;
    }
    throw new PlinthError('not_found', `no machine has uuid '${uuid}'`, { details: { uuid } });
  }

  /** A machine as Tateru's client reads it; `managedBy` is the controller's URL for API clients. */
  async present(m: Machine, managedBy: string): Promise<TateruMachine> {
    const reach = await this.d.holds.endpoint(m);
    return {
      uuid: m.identity.systemUuid ?? m.id,
      ...(m.identity.serial ? { serialNumber: m.identity.serial } : {}),
      ...(m.identity.assetTag ? { assetTag: m.identity.assetTag } : {}),
      name: m.name,
      managedBy,
      ...(reach ? { installerAddress: reach.address, sshPorts: { installer: reach.port } } : {}),
    };
  }

  /**
   * Boots the machine into the installer holding `key`. With a nonce already used on this
   * machine: that operation's answer (409 if it let another key in). Another operation in
   * flight on the machine: 409.
   */
  async bootInstaller(uuid: string, key: string, nonce: string | undefined, actor: Actor): Promise<TateruBootInstallerAnswer> {
    const m = await this.get(uuid);
    const again = async (): Promise<TateruBootInstallerAnswer | null> => {
      if (nonce === undefined) return null;
      const run = await this.d.holds.runWithNonce(m, 'installer', nonce);
      if (!run) return null;
      if (!(run.params as Partial<HoldRunParams>).authorizedKeys?.includes(key.trim())) {
        throw new PlinthError('conflict', `nonce: '${nonce}' already started run ${run.id} with another ssh_pub_key`, { details: { field: 'nonce', run: run.id } });
      }
      const now = await requireMachine(this.d.store.db, this.d.store.dialect, m.id);
      return { uuid: m.identity.systemUuid ?? m.id, name: now.name, state: now.state, run: run.id, nonce };
    };
    const earlier = await again();
    if (earlier) return earlier;
    if (m.currentRunId) {
      throw new PlinthError('conflict', `machine ${m.name} is ${m.state}: another operation (run ${m.currentRunId}) is in flight`, { details: { machine: m.name, state: m.state, run: m.currentRunId } });
    }
    try {
      const r = await this.d.holds.start(m.id, 'installer', [key], actor, 'boot-installer (Tateru API)', nonce !== undefined ? { nonce } : {});
      return { uuid: m.identity.systemUuid ?? m.id, name: r.machine.name, state: r.machine.state, run: r.run!.id, nonce: nonce ?? null };
    } catch (e) {
      // Two requests with one nonce at once: the one that lost the race answers with the winner's run.
      const winner = await again();
      if (winner) return winner;
      throw e;
    }
  }

  /**
   * Tateru's installer callback, made with the run's ticket: the machine in the path must be
   * the run's. Answers the key the run lets in.
   */
  async callbackKey(uuid: string, p: RunPrincipal): Promise<{ ssh_pub_key: string }> {
    const m = await this.get(uuid);
    if (m.id !== p.machineId) throw new PlinthError('forbidden', `this run ticket is not machine ${m.name}'s`);
    const run = await getRun(this.d.store.db, p.runId);
    const key = (run.params as Partial<HoldRunParams>).authorizedKeys?.[0];
    if (!key) throw new PlinthError('conflict', `run ${run.id} holds no installer key`);
    return { ssh_pub_key: key };
  }
}
