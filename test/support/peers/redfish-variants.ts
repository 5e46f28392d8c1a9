/**
 * Vendor-shaped variants of the DMTF public mockup `public-rackmount1`
 * (/work/shared/fixtures/redfish-mockups, BSD-3-Clause, DMTF Redfish-Mockup-Server).
 *
 * Each variant changes only what that vendor is documented or reported to change — resource
 * Ids, Manufacturer/Model, Oem sections, which AllowableValues are listed, where virtual media
 * lives — and names the behaviour the test service must imitate. Sources:
 *
 * - idrac (iDRAC 9, firmware before 6.00.02): Ids System.Embedded.1 / iDRAC.Embedded.1;
 *   reset list On, ForceOff, ForceRestart, GracefulShutdown, PushPowerButton, Nmi
 *   (quadsproject/badfish #118); boot targets as listed in dell/iDRAC-Redfish-Scripting #324;
 *   virtual media CD/RemovableDisk under the Manager with InsertMedia/EjectMedia actions
 *   (dell/iDRAC-Redfish-Scripting #24, #58); BootSourceOverrideMode refused together with
 *   BootSourceOverrideEnabled, IDRAC.1.6.SYS410 (ansible-collections/community.general #5091).
 * - idrac10: virtual media only under the System, slots "1"/"2" (badfish #578, terraform-provider-redfish
 *   #331); no BootSourceOverrideTarget@Redfish.AllowableValues (dell/iDRAC-Redfish-Scripting #324).
 * - ilo (iLO 4 shape): Ids 1, every @odata.id and action target ends in "/", reset list On, ForceOff,
 *   ForceRestart, Nmi, PushPowerButton (recorded iLO 4 ComputerSystem payloads; HPE
 *   ilo-rest-api-docs); Oem.Hpe.PostState (HPEDevCom/redfishdocs, iLO 5 ComputerSystem
 *   definitions); BootSourceOverrideMode not writable (community.general #3509); restart types
 *   refused while off with iLO.0.10.InvalidOperationForSystemState (goldyfruit/ansible-ilo #1);
 *   virtual media under Managers/1/VirtualMedia with slot 2 the CD (HPE ilo-ansible-collection #37,
 *   ironcore-dev/metal-operator #690); session Location given as an absolute URL.
 * - xcc (Lenovo XClarity Controller): virtual media under Managers/1 with predefined RDOC1, RDOC2,
 *   EXT1, EXT2 members and no actions: mounted by PATCH (stmcginnis/gofish #529,
 *   lenovo/python-redfish-lenovo #21); RDOC slots refuse a URL.
 * - supermicro: BootSourceOverrideMode reverts to Legacy unless repeated (DMTF/Redfishtool #106).
 * - actioninfo: the reset values published through `@Redfish.ActionInfo` and a ResetActionInfo
 *   resource instead of AllowableValues (DMTF ActionInfo schema, as OpenBMC's bmcweb and DMTF's
 *   Redfish-Interface-Emulator serve it).
 */

export const REDFISH_VARIANTS = ['dmtf', 'idrac', 'idrac10', 'ilo', 'xcc', 'supermicro', 'actioninfo'] as const;
export type RedfishVariant = (typeof REDFISH_VARIANTS)[number];

export type Json = Record<string, unknown>;

/** How the test service must behave beyond serving the resources. */
export interface VariantBehaviour {
  /** Reject a PATCH carrying BootSourceOverrideMode together with BootSourceOverrideEnabled. */
  modeWithEnabledRejected: boolean;
  /** Reject any PATCH of BootSourceOverrideMode. */
  modeReadOnly: boolean;
  /** A Boot PATCH without BootSourceOverrideMode resets it to Legacy. */
  modeRevertsUnlessSent: boolean;
  /** Restart reset types are refused while the system is off. */
  restartRefusedWhileOff: boolean;
  /** Session Location header as an absolute URL. */
  absoluteSessionLocation: boolean;
  /** Virtual media slot Ids that refuse an image URL. */
  slotRefusesUrl: (slotId: string) => boolean;
}

export interface VariantTree {
  resources: Map<string, Json>;
  systemPath: string;
  managerPath: string;
  behaviour: VariantBehaviour;
}

const BASE_BEHAVIOUR: VariantBehaviour = {
  modeWithEnabledRejected: false,
  modeReadOnly: false,
  modeRevertsUnlessSent: false,
  restartRefusedWhileOff: false,
  absoluteSessionLocation: false,
  slotRefusesUrl: () => false,
};

const MOCKUP_SYSTEM = '/redfish/v1/Systems/437XR1138R2';
const MOCKUP_MANAGER = '/redfish/v1/Managers/BMC';
const MOCKUP_CHASSIS = '/redfish/v1/Chassis/1U';

/** Path key used for lookups: no trailing slash, case-insensitive (iLO serves either case). */
export function pathKey(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return (trimmed === '' ? '/' : trimmed).toLowerCase();
}

function renamePaths(resources: Map<string, Json>, renames: Array<[string, string]>): Map<string, Json> {
  const out = new Map<string, Json>();
  for (const [path, resource] of resources) {
    let text = JSON.stringify(resource);
    let newPath = path;
    for (const [from, to] of renames) {
      text = text.split(`"${from}"`).join(`"${to}"`).split(`"${from}/`).join(`"${to}/`);
      if (newPath === from || newPath.startsWith(`${from}/`)) newPath = to + newPath.slice(from.length);
    }
    out.set(newPath, JSON.parse(text) as Json);
  }
  return out;
}

function withTrailingSlashes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withTrailingSlashes);
  if (value && typeof value === 'object') {
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) {
      if ((k === '@odata.id' || k === 'target') && typeof v === 'string' && v.startsWith('/redfish/') && !v.endsWith('/')) out[k] = `${v}/`;
      else out[k] = withTrailingSlashes(v);
    }
    return out;
  }
  return value;
}

function resetAction(system: Json): Json {
  return (system['Actions'] as Json)['#ComputerSystem.Reset'] as Json;
}

function mediaSlot(id: string, parent: string, name: string, types: string[], withActions: boolean, oem?: Json): Json {
  const path = `${parent}/${id}`;
  const slot: Json = {
    '@odata.type': '#VirtualMedia.v1_3_0.VirtualMedia',
    '@odata.id': path,
    Id: id,
    Name: name,
    MediaTypes: types,
    Image: null,
    ImageName: null,
    Inserted: false,
    WriteProtected: true,
    ConnectedVia: 'NotConnected',
  };
  if (withActions) {
    slot['Actions'] = {
      '#VirtualMedia.InsertMedia': { target: `${path}/Actions/VirtualMedia.InsertMedia` },
      '#VirtualMedia.EjectMedia': { target: `${path}/Actions/VirtualMedia.EjectMedia` },
    };
  }
  if (oem) slot['Oem'] = oem;
  return slot;
}

function addMediaCollection(resources: Map<string, Json>, parent: string, slots: Json[]): void {
  const collection = `${parent}/VirtualMedia`;
  resources.set(collection, {
    '@odata.type': '#VirtualMediaCollection.VirtualMediaCollection',
    '@odata.id': collection,
    Name: 'Virtual Media Services',
    Members: slots.map((s) => ({ '@odata.id': s['@odata.id'] })),
    'Members@odata.count': slots.length,
  });
  for (const s of slots) resources.set(s['@odata.id'] as string, s);
  const owner = resources.get(parent);
  if (owner) owner['VirtualMedia'] = { '@odata.id': collection };
}

function removeSystemMedia(resources: Map<string, Json>, systemPath: string): void {
  const system = resources.get(systemPath)!;
  delete system['VirtualMedia'];
  for (const key of [...resources.keys()]) if (key.startsWith(`${systemPath}/VirtualMedia`)) resources.delete(key);
}

function retarget(resources: Map<string, Json>, systemPath: string, managerPath: string, manufacturer: string, model: string, oem: Json): void {
  const system = resources.get(systemPath)!;
  system['Manufacturer'] = manufacturer;
  system['Model'] = model;
  system['Oem'] = oem;
  const manager = resources.get(managerPath);
  if (manager) manager['Oem'] = oem;
}

/** Builds the resource tree and behaviour of one variant from the mockup's resources. */
export function buildVariant(mockup: Map<string, Json>, variant: RedfishVariant): VariantTree {
  const clone = (): Map<string, Json> => new Map([...mockup].map(([k, v]) => [k, structuredClone(v)]));
  switch (variant) {
    case 'dmtf':
      return { resources: clone(), systemPath: MOCKUP_SYSTEM, managerPath: MOCKUP_MANAGER, behaviour: BASE_BEHAVIOUR };

    case 'idrac':
    case 'idrac10': {
      const systemPath = '/redfish/v1/Systems/System.Embedded.1';
      const managerPath = '/redfish/v1/Managers/iDRAC.Embedded.1';
      const resources = renamePaths(clone(), [
        [MOCKUP_SYSTEM, systemPath],
        [MOCKUP_MANAGER, managerPath],
        [MOCKUP_CHASSIS, '/redfish/v1/Chassis/System.Embedded.1'],
      ]);
      retarget(resources, systemPath, managerPath, 'Dell Inc.', 'PowerEdge R640', {
        Dell: { '@odata.type': '#DellOem.v1_3_0.DellOemResources', DellSystem: { '@odata.id': `/redfish/v1/Systems/System.Embedded.1/Oem/Dell/DellSystems/System.Embedded.1` } },
      });
      const system = resources.get(systemPath)!;
      resetAction(system)['ResetType@Redfish.AllowableValues'] = ['On', 'ForceOff', 'ForceRestart', 'GracefulShutdown', 'PushPowerButton', 'Nmi'];
      const boot = system['Boot'] as Json;
      removeSystemMedia(resources, systemPath);
      if (variant === 'idrac') {
        boot['BootSourceOverrideTarget@Redfish.AllowableValues'] = ['None', 'Pxe', 'Floppy', 'Cd', 'Hdd', 'BiosSetup', 'Utilities', 'UefiTarget', 'SDCard', 'UefiHttp'];
        addMediaCollection(resources, managerPath, [
          mediaSlot('RemovableDisk', `${managerPath}/VirtualMedia`, 'Virtual Removable Disk', ['USBStick'], true),
          mediaSlot('CD', `${managerPath}/VirtualMedia`, 'Virtual CD', ['CD', 'DVD'], true),
        ]);
        return { resources, systemPath, managerPath, behaviour: { ...BASE_BEHAVIOUR, modeWithEnabledRejected: true } };
      }
      delete boot['BootSourceOverrideTarget@Redfish.AllowableValues'];
      addMediaCollection(resources, systemPath, [
        mediaSlot('2', `${systemPath}/VirtualMedia`, 'VirtualMedia Instance 2', ['CD', 'DVD', 'USBStick'], true),
        mediaSlot('1', `${systemPath}/VirtualMedia`, 'VirtualMedia Instance 1', ['CD', 'DVD', 'USBStick'], true),
      ]);
      return { resources, systemPath, managerPath, behaviour: BASE_BEHAVIOUR };
    }

    case 'ilo': {
      const systemPath = '/redfish/v1/Systems/1';
      const managerPath = '/redfish/v1/Managers/1';
      let resources = renamePaths(clone(), [
        [MOCKUP_SYSTEM, systemPath],
        [MOCKUP_MANAGER, managerPath],
        [MOCKUP_CHASSIS, '/redfish/v1/Chassis/1'],
      ]);
      retarget(resources, systemPath, managerPath, 'HPE', 'ProLiant DL360 Gen10', {
        Hpe: { '@odata.type': '#HpeComputerSystemExt.v2_10_0.HpeComputerSystemExt', PostState: 'FinishedPost', PowerOnDelay: 'Minimum' },
      });
      const system = resources.get(systemPath)!;
      resetAction(system)['ResetType@Redfish.AllowableValues'] = ['On', 'ForceOff', 'ForceRestart', 'Nmi', 'PushPowerButton'];
      removeSystemMedia(resources, systemPath);
      addMediaCollection(resources, managerPath, [
        mediaSlot('1', `${managerPath}/VirtualMedia`, 'VirtualMedia', ['Floppy', 'USBStick'], true),
        mediaSlot('2', `${managerPath}/VirtualMedia`, 'VirtualMedia', ['CD', 'DVD'], true, { Hpe: { BootOnNextServerReset: false } }),
      ]);
      resources = new Map([...resources].map(([k, v]) => [k, withTrailingSlashes(v) as Json]));
      return {
        resources,
        systemPath: `${systemPath}/`,
        managerPath: `${managerPath}/`,
        behaviour: { ...BASE_BEHAVIOUR, modeReadOnly: true, restartRefusedWhileOff: true, absoluteSessionLocation: true },
      };
    }

    case 'xcc': {
      const systemPath = '/redfish/v1/Systems/1';
      const managerPath = '/redfish/v1/Managers/1';
      const resources = renamePaths(clone(), [
        [MOCKUP_SYSTEM, systemPath],
        [MOCKUP_MANAGER, managerPath],
        [MOCKUP_CHASSIS, '/redfish/v1/Chassis/1'],
      ]);
      retarget(resources, systemPath, managerPath, 'Lenovo', 'ThinkSystem SR630', {
        Lenovo: { '@odata.type': '#LenovoComputerSystem.v1_0_0.LenovoComputerSystem', SystemStatus: 'OSBooted' },
      });
      removeSystemMedia(resources, systemPath);
      const parent = `${managerPath}/VirtualMedia`;
      addMediaCollection(resources, managerPath, [
        mediaSlot('RDOC1', parent, 'RDOC1', ['CD', 'DVD'], false),
        mediaSlot('RDOC2', parent, 'RDOC2', ['CD', 'DVD'], false),
        mediaSlot('EXT1', parent, 'EXT1', ['CD', 'DVD'], false),
        mediaSlot('EXT2', parent, 'EXT2', ['CD', 'DVD'], false),
      ]);
      return { resources, systemPath, managerPath, behaviour: { ...BASE_BEHAVIOUR, slotRefusesUrl: (id) => id.startsWith('RDOC') } };
    }

    case 'supermicro': {
      const systemPath = '/redfish/v1/Systems/1';
      const managerPath = '/redfish/v1/Managers/1';
      const resources = renamePaths(clone(), [
        [MOCKUP_SYSTEM, systemPath],
        [MOCKUP_MANAGER, managerPath],
        [MOCKUP_CHASSIS, '/redfish/v1/Chassis/1'],
      ]);
      retarget(resources, systemPath, managerPath, 'Supermicro', 'SYS-1029U-TRT', {
        Supermicro: { '@odata.type': '#SmcSystemExtensions.v1_0_0.System' },
      });
      return { resources, systemPath, managerPath, behaviour: { ...BASE_BEHAVIOUR, modeRevertsUnlessSent: true } };
    }

    case 'actioninfo': {
      const resources = clone();
      const system = resources.get(MOCKUP_SYSTEM)!;
      const action = resetAction(system);
      const infoPath = `${MOCKUP_SYSTEM}/ResetActionInfo`;
      const values = action['ResetType@Redfish.AllowableValues'];
      delete action['ResetType@Redfish.AllowableValues'];
      action['@Redfish.ActionInfo'] = infoPath;
      resources.set(infoPath, {
        '@odata.type': '#ActionInfo.v1_1_2.ActionInfo',
        '@odata.id': infoPath,
        Id: 'ResetActionInfo',
        Name: 'Reset Action Info',
        Parameters: [{ Name: 'ResetType', Required: true, DataType: 'String', AllowableValues: values }],
      });
      return { resources, systemPath: MOCKUP_SYSTEM, managerPath: MOCKUP_MANAGER, behaviour: BASE_BEHAVIOUR };
    }
  }
}
