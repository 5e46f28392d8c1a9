import { Type, type TSchema } from 'typebox';
import { DISK_NAME_PATTERN, FACT_TEXT_PATTERN, NIC_NAME_PATTERN } from '../core/facts.js';

/**
 * The facts document an agent reports (src/core/facts.ts), as a validating schema: the body of
 * POST /agent/v1/facts. Whoever
 * holds a run token can send it, and its names reach preseed, kickstart and kernel command
 * lines: every string is one line of text without control characters, disk and NIC names
 * are kernel names, addresses are addresses. A document that breaks any of it is refused
 * whole (400 naming the field), and nothing of it is stored.
 */
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Str = (max = 512) => Type.String({ maxLength: max, pattern: FACT_TEXT_PATTERN });
const Address = Type.String({ maxLength: 64, pattern: '^[0-9A-Fa-f.:]+$' });
const Strict = { additionalProperties: false } as const;

export const FactsSchema = Type.Object(
  {
    system: Type.Object(
      {
        uuid: Nullable(Str(128)),
        serial: Nullable(Str()),
        assetTag: Nullable(Str()),
        manufacturer: Nullable(Str()),
        productName: Nullable(Str()),
      },
      Strict,
    ),
    cpu: Type.Object(
      {
        architecture: Type.String({ pattern: '^[A-Za-z0-9_.-]{0,64}$' }),
        model: Nullable(Str()),
        sockets: Type.Integer({ minimum: 0, maximum: 1024 }),
        cores: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
        threads: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
      },
      Strict,
    ),
    memory: Type.Object(
      { totalBytes: Type.Integer({ minimum: 0 }), source: Type.String({ enum: ['smbios', 'meminfo'] }) },
      Strict,
    ),
    disks: Type.Array(
      Type.Object(
        {
          name: Type.String({ pattern: DISK_NAME_PATTERN, description: 'kernel name: sda, nvme0n1, cciss/c0d0' }),
          sizeBytes: Type.Integer({ minimum: 0 }),
          model: Nullable(Str()),
          serial: Nullable(Str()),
          wwn: Nullable(Str()),
          rotational: Type.Boolean(),
        },
        Strict,
      ),
      { maxItems: 1024 },
    ),
    nics: Type.Array(
      Type.Object(
        {
          name: Type.String({ pattern: NIC_NAME_PATTERN, description: 'kernel interface name' }),
          mac: Type.String({ pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$', description: 'lower-case, colon-separated' }),
          driver: Nullable(Str(128)),
          speedMbps: Nullable(Type.Integer({ minimum: 0 })),
          link: Type.Boolean(),
          ipv4: Type.Array(Address, { maxItems: 256 }),
          ipv6: Type.Array(Address, { maxItems: 256 }),
        },
        Strict,
      ),
      { maxItems: 1024 },
    ),
    firmware: Type.Object(
      { bootMode: Type.String({ enum: ['uefi', 'bios'] }), vendor: Nullable(Str()), version: Nullable(Str()) },
      Strict,
    ),
    bmc: Nullable(Type.Object({ ipv4: Nullable(Address), mac: Nullable(Str(64)) }, Strict)),
    hw: Type.Array(Type.Array(Str(4096), { minItems: 4, maxItems: 4 }), { maxItems: 50_000, description: 'eDeploy 4-tuples, values as strings' }),
  },
  Strict,
);
