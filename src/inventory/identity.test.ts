import { describe, expect, it } from 'vitest';
import { isJunk, normalizeIdentity, normalizeUuid, reconcileIdentity, resolveIdentity, sameUuid, swapUuidByteOrder, type CandidateMachine } from './identity.js';

const cand = (over: Partial<CandidateMachine>): CandidateMachine => ({
  id: 'x',
  systemUuid: null,
  serial: null,
  manufacturer: null,
  assetTag: null,
  macs: [],
  ...over,
});

describe('junk values', () => {
  it.each([
    '',
    '   ',
    'To Be Filled By O.E.M.',
    'to be filled by o.e.m.',
    'System Serial Number',
    'Default string',
    '0123456789',
    'Not Specified',
    '00000000',
    '........',
    'None',
  ])('%j is junk', (v) => expect(isJunk(v)).toBe(true));

  it.each(['CZJ31402CD', '9K9PW02', 'SN-1', 'VMware-42 1d', '0000AB12'])('%j is an identity', (v) => expect(isJunk(v)).toBe(false));

  it('rejects placeholder and malformed UUIDs, canonicalises the rest', () => {
    expect(normalizeUuid('00000000-0000-0000-0000-000000000000')).toBeNull();
    expect(normalizeUuid('FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF')).toBeNull();
    expect(normalizeUuid('03000200-0400-0500-0006-000700080009')).toBeNull();
    expect(normalizeUuid('not-a-uuid')).toBeNull();
    expect(normalizeUuid('{4C4C4544-0039-4B10-8050-B9C04F505702}')).toBe('4c4c4544-0039-4b10-8050-b9c04f505702');
    expect(normalizeUuid('4C4C454400394B108050B9C04F505702')).toBe('4c4c4544-0039-4b10-8050-b9c04f505702');
  });

  it('normalises a report: junk dropped, MACs canonical, sorted, deduplicated, no multicast', () => {
    const id = normalizeIdentity({
      systemUuid: '00000000-0000-0000-0000-000000000000',
      serial: 'To Be Filled By O.E.M.',
      manufacturer: 'System manufacturer',
      assetTag: 'ASSET-7',
      macs: ['52-54-00-AA-BB-02', '52:54:00:aa:bb:01', '5254.00aa.bb01', '01:00:5e:00:00:01', '00:00:00:00:00:00'],
    });
    expect(id).toEqual({
      systemUuid: null,
      serial: null,
      manufacturer: null,
      productName: null,
      assetTag: 'ASSET-7',
      macs: ['52:54:00:aa:bb:01', '52:54:00:aa:bb:02'],
    });
  });
});

describe('resolveIdentity', () => {
  const reported = normalizeIdentity({
    systemUuid: '11111111-2222-3333-4444-555555555555',
    serial: 'SN-1',
    manufacturer: 'Dell Inc.',
    assetTag: 'A-1',
    macs: ['52:54:00:00:00:01'],
  });

  it('finds nothing among no candidates', () => {
    expect(resolveIdentity(reported, [])).toEqual({ machineId: null, matchedBy: null, conflicts: [] });
  });

  it('prefers UUID, then serial, then asset tag, then MAC', () => {
    const byMac = cand({ id: 'mac', macs: ['52:54:00:00:00:01'] });
    const byAsset = cand({ id: 'asset', assetTag: 'A-1' });
    const bySerial = cand({ id: 'serial', serial: 'SN-1', manufacturer: 'Dell Inc.' });
    const byUuid = cand({ id: 'uuid', systemUuid: '11111111-2222-3333-4444-555555555555' });
    expect(resolveIdentity(reported, [byMac]).matchedBy).toBe('mac');
    expect(resolveIdentity(reported, [byMac, byAsset]).machineId).toBe('asset');
    expect(resolveIdentity(reported, [byMac, byAsset, bySerial]).machineId).toBe('serial');
    const all = resolveIdentity(reported, [byMac, byAsset, bySerial, byUuid]);
    expect(all.machineId).toBe('uuid');
    expect(all.matchedBy).toBe('systemUuid');
    // The other three machines hold identifiers of this one: conflicts, not merges.
    expect(all.conflicts.filter((c) => c.kind === 'other-machine').map((c) => [c.field, c.machineId])).toEqual([
      ['serial', 'serial'],
      ['assetTag', 'asset'],
      ['mac', 'mac'],
    ]);
  });

  it('matches a serial only with the same manufacturer (or an unknown one)', () => {
    const other = cand({ id: 'hp', serial: 'SN-1', manufacturer: 'HP' });
    expect(resolveIdentity(reported, [other]).machineId).toBeNull();
    const unknownMaker = cand({ id: 'u', serial: 'SN-1', manufacturer: null });
    expect(resolveIdentity(reported, [unknownMaker]).machineId).toBe('u');
  });

  it('reports a mismatch when the chosen machine has another UUID on record', () => {
    const swapped = cand({ id: 'm', systemUuid: '99999999-2222-3333-4444-555555555555', serial: 'SN-1', manufacturer: 'Dell Inc.' });
    const r = resolveIdentity(reported, [swapped]);
    expect(r.machineId).toBe('m');
    expect(r.matchedBy).toBe('serial');
    expect(r.conflicts).toEqual([
      { field: 'systemUuid', kind: 'mismatch', reported: '11111111-2222-3333-4444-555555555555', recorded: '99999999-2222-3333-4444-555555555555', machineId: 'm' },
    ]);
  });

  it('a MAC held by a machine with another UUID is not a match: the MAC moved', () => {
    const previousOwner = cand({ id: 'old', systemUuid: '99999999-2222-3333-4444-555555555555', macs: ['52:54:00:00:00:01'] });
    const r = resolveIdentity(normalizeIdentity({ systemUuid: '11111111-2222-3333-4444-555555555555', macs: ['52:54:00:00:00:01'] }), [previousOwner]);
    expect(r).toEqual({ machineId: null, matchedBy: null, conflicts: [{ field: 'mac', kind: 'other-machine', reported: '52:54:00:00:00:01', machineId: 'old' }] });
    // Without a UUID on either side the MAC still identifies.
    expect(resolveIdentity(normalizeIdentity({ macs: ['52:54:00:00:00:01'] }), [previousOwner]).machineId).toBe('old');
    const noUuidYet = cand({ id: 'bare', macs: ['52:54:00:00:00:01'] });
    expect(resolveIdentity(reported, [noUuidYet]).machineId).toBe('bare');
  });

  it('a UUID match outranks a MAC another machine holds', () => {
    const byUuid = cand({ id: 'uuid', systemUuid: '11111111-2222-3333-4444-555555555555' });
    const macHolder = cand({ id: 'holder', systemUuid: '99999999-2222-3333-4444-555555555555', macs: ['52:54:00:00:00:01'] });
    const r = resolveIdentity(reported, [macHolder, byUuid]);
    expect(r.machineId).toBe('uuid');
    expect(r.matchedBy).toBe('systemUuid');
  });

  it('identifies a machine whose SMBIOS is all junk by its MAC', () => {
    const junk = normalizeIdentity({
      systemUuid: '00000000-0000-0000-0000-000000000000',
      serial: 'To Be Filled By O.E.M.',
      assetTag: 'Default string',
      macs: ['52:54:00:00:00:09'],
    });
    const known = cand({ id: 'k', macs: ['52:54:00:00:00:09'] });
    const junkTwin = cand({ id: 'j', serial: null });
    expect(resolveIdentity(junk, [junkTwin, known])).toEqual({ machineId: 'k', matchedBy: 'mac', conflicts: [] });
  });
});

/**
 * SMBIOS 7.2.1's own example: UUID 00112233-4455-6677-8899-aabbccddeeff is stored as the bytes
 * 33 22 11 00 55 44 77 66 88 99 aa bb cc dd ee ff. A BMC that hands out those bytes as its
 * System GUID, read in RFC 4122 order (what ipmitool may guess), prints the second string.
 */
const SMBIOS = '00112233-4455-6677-8899-aabbccddeeff';
const RFC4122_OF_SAME_BYTES = '33221100-5544-7766-8899-aabbccddeeff';

describe('system UUID byte orders', () => {
  it('swaps the first three fields and nothing else, and swapping twice gives the UUID back', () => {
    expect(swapUuidByteOrder(SMBIOS)).toBe(RFC4122_OF_SAME_BYTES);
    expect(swapUuidByteOrder(RFC4122_OF_SAME_BYTES)).toBe(SMBIOS);
    expect(sameUuid(SMBIOS, RFC4122_OF_SAME_BYTES)).toBe(true);
    expect(sameUuid(SMBIOS, '00112233-4455-6677-8899-aabbccddeef0')).toBe(false);
    expect(sameUuid(null, SMBIOS)).toBe(false);
  });

  it('a machine enlisted with the BMC GUID is the machine that reports the SMBIOS UUID of the same bytes', () => {
    const enlisted = cand({ id: 'bmc', systemUuid: RFC4122_OF_SAME_BYTES });
    const r = resolveIdentity(normalizeIdentity({ systemUuid: SMBIOS.toUpperCase(), macs: ['52:54:00:00:00:21'] }), [enlisted]);
    expect(r).toEqual({ machineId: 'bmc', matchedBy: 'systemUuid', conflicts: [] });
  });

  it('a MAC held by a machine whose UUID is the same in the other byte order still identifies it', () => {
    const holder = cand({ id: 'h', systemUuid: RFC4122_OF_SAME_BYTES, macs: ['52:54:00:00:00:22'] });
    const r = resolveIdentity(normalizeIdentity({ systemUuid: SMBIOS, macs: ['52:54:00:00:00:22'] }), [holder]);
    expect(r).toMatchObject({ machineId: 'h', conflicts: [] });
  });

  it('reconciling keeps the recorded UUID: the other byte order is neither learned nor a mismatch', () => {
    const self = cand({ id: 's', systemUuid: RFC4122_OF_SAME_BYTES });
    const r = reconcileIdentity(self, normalizeIdentity({ systemUuid: SMBIOS, macs: ['52:54:00:00:00:23'] }), []);
    expect(r).toEqual({ updates: {}, newMacs: ['52:54:00:00:00:23'], conflicts: [] });
  });

  it('the other byte order held by another machine is that machine, not a UUID to learn', () => {
    const self = cand({ id: 's' });
    const other = cand({ id: 'o', systemUuid: RFC4122_OF_SAME_BYTES });
    const r = reconcileIdentity(self, normalizeIdentity({ systemUuid: SMBIOS }), [other]);
    expect(r.updates).toEqual({});
    expect(r.conflicts).toEqual([{ field: 'systemUuid', kind: 'other-machine', reported: SMBIOS, machineId: 'o' }]);
  });
});
