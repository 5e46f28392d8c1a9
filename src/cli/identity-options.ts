import type { Command } from 'commander';
import { collect } from './context.js';

/** The identity flags `machine create` and `machine update` share. */
export function withIdentityOptions(cmd: Command, macHelp: string): Command {
  return cmd
    .option('--uuid <uuid>', 'SMBIOS system UUID')
    .option('--serial <serial>', 'serial number')
    .option('--manufacturer <name>', 'manufacturer')
    .option('--product <name>', 'product name')
    .option('--asset-tag <tag>', 'asset tag')
    .option('--mac <mac>', macHelp, collect, []);
}

export interface IdentityFlags {
  uuid?: string;
  serial?: string;
  manufacturer?: string;
  product?: string;
  assetTag?: string;
  mac: string[];
}

/** The identity object for the API from the flags given; undefined when none were. */
export function identityFromFlags(o: IdentityFlags) {
  const identity: { systemUuid?: string; serial?: string; manufacturer?: string; productName?: string; assetTag?: string; macs?: string[] } = {};
  if (o.uuid) identity.systemUuid = o.uuid;
  if (o.serial) identity.serial = o.serial;
  if (o.manufacturer) identity.manufacturer = o.manufacturer;
  if (o.product) identity.productName = o.product;
  if (o.assetTag) identity.assetTag = o.assetTag;
  if (o.mac.length) identity.macs = o.mac;
  return Object.keys(identity).length ? identity : undefined;
}
