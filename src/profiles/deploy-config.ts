import { Type, type Static } from 'typebox';
import Value from 'typebox/value';
import { SCRIPT_NAME_PATTERN, SSH_PUBLIC_KEY_PATTERN } from '../protocol/agent.js';
import { DeployMethodSchema, KernelArgsSchema, OnSuccessSchema, OsSettingsSchema, RootDeviceHintsSchema, TreeRefSchema } from '../protocol/deploy.js';
import { DiskLayoutSchema } from '../protocol/disk-layout.js';
import { TEMPLATE_NAME_MAX_LENGTH, TEMPLATE_NAME_PATTERN } from '../templates/kinds.js';

/**
 * What a profile says about deploying the machines it matched. The deploy component reads
 * it; the API validates it with this schema when a profile is written (unknown keys are
 * refused, so a misspelt field is an error rather than silently ignored).
 */
const Strict = { additionalProperties: false } as const;
/** One OpenSSH public key line, as deploy requests accept them (the protocol's definition). */
export const SSH_KEY_PATTERN = SSH_PUBLIC_KEY_PATTERN;

/**
 * The template rendered in place of the deploy method's main one (cloud-init `user-data` for
 * image deploys, `preseed.cfg`, `ks.cfg`, autoinstall `user-data`) and served under that name:
 * how a template an override added under a new name is put to use.
 */
export const MainTemplateSchema = Type.String({
  maxLength: TEMPLATE_NAME_MAX_LENGTH,
  pattern: TEMPLATE_NAME_PATTERN.source,
  description: "a template of the method's kind rendered in place of its main one (e.g. an override named rhel9.cfg for kickstart)",
});

export const DeployConfigSchema = Type.Object(
  {
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'image name in the image store' })),
    method: Type.Optional(DeployMethodSchema),
    rootDeviceHints: Type.Optional(RootDeviceHintsSchema),
    sshKeys: Type.Optional(
      Type.Array(Type.String({ minLength: 16, maxLength: 16_384, pattern: SSH_KEY_PATTERN }), { maxItems: 100, description: 'public keys for the installed OS' }),
    ),
    kernelArgs: Type.Optional(KernelArgsSchema),
    os: Type.Optional(OsSettingsSchema),
    template: Type.Optional(MainTemplateSchema),
    tree: Type.Optional(TreeRefSchema),
    diskLayout: Type.Optional(DiskLayoutSchema),
    onSuccess: Type.Optional(OnSuccessSchema),
    configureScripts: Type.Optional(
      Type.Array(Type.String({ pattern: SCRIPT_NAME_PATTERN }), { minItems: 1, maxItems: 64, description: 'image and tree deploys: library scripts (plinth script add) run in the installer before the disks, in order, when the deploy names none of its own' }),
    ),
    installer: Type.Optional(
      Type.Object(
        {
          kernelUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
          initrdUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
        },
        Strict,
      ),
    ),
  },
  { ...Strict, description: "a profile's deploy configuration" },
);

export type DeployConfig = Static<typeof DeployConfigSchema>;

/** True when `value` is a valid deploy configuration (what the API accepted is, by construction). */
export function isDeployConfig(value: unknown): value is DeployConfig {
  return Value.Check(DeployConfigSchema, value);
}
