import { Type, type Static } from 'typebox';

/**
 * What a deploy asks for, in the one form the operator API, profiles and the agent share:
 * the methods a deploy can use and the root device hints that pick its disk. Each was once
 * written in three places with three rule sets; a hint the API accepted could still be
 * refused by the agent after the machine had booted. Now every side checks the same schema.
 */

/** How the OS gets onto the disk: the agent writes an image, or a distribution's installer runs. */
export const DEPLOY_METHODS = ['image', 'preseed', 'kickstart', 'autoinstall'] as const;
export type DeployMethod = (typeof DEPLOY_METHODS)[number];
export const DeployMethodSchema = Type.Enum(DEPLOY_METHODS, { description: 'how the OS gets onto the disk' });
export const isDeployMethod = (s: string): s is DeployMethod => (DEPLOY_METHODS as readonly string[]).includes(s);

/** Text a hint compares: at least one visible character (the agent compares it trimmed), one line. */
const HintText = (maxLength: number, description?: string) =>
  Type.String({ minLength: 1, maxLength, pattern: '^[^\\u0000-\\u001f\\u007f]*\\S[^\\u0000-\\u001f\\u007f]*$', ...(description ? { description } : {}) });
const HintSize = (description: string) => Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description });

/**
 * Ironic-style root device hints: every hint given must match exactly (strings after
 * trimming; wwn without regard to case). `name` may be `/dev/sda` or `sda`. The key order
 * is the order the agent lists them in when it refuses an unknown one.
 */
export const RootDeviceHintsSchema = Type.Object(
  {
    name: Type.Optional(HintText(128, 'kernel name, e.g. sda or /dev/nvme0n1')),
    serial: Type.Optional(HintText(256)),
    wwn: Type.Optional(HintText(256)),
    model: Type.Optional(HintText(256)),
    vendor: Type.Optional(HintText(256)),
    sizeBytes: Type.Optional(HintSize('exact size in bytes')),
    sizeGiB: Type.Optional(HintSize('exact size in GiB, rounded down as Ironic does')),
    minSizeBytes: Type.Optional(HintSize('the smallest acceptable size in bytes')),
  },
  { additionalProperties: false, description: 'which disk gets the image (Ironic-style root device hints; every hint given must hold); default: the smallest that fits' },
);
export type RootDeviceHints = Static<typeof RootDeviceHintsSchema>;
export const ROOT_DEVICE_HINTS = Object.keys(RootDeviceHintsSchema.properties) as (keyof RootDeviceHints)[];
/** The hints that are sizes (whole numbers of bytes or GiB); the others are text. */
export const SIZE_HINTS = ['sizeBytes', 'sizeGiB', 'minSizeBytes'] as const satisfies readonly (keyof RootDeviceHints)[];
