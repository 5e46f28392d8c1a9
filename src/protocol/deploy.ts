import { Type, type Static } from 'typebox';

/**
 * What a deploy asks for, in the one form the operator API, profiles and the agent share:
 * the methods a deploy can use and the root device hints that pick its disk. Each was once
 * written in three places with three rule sets; a hint the API accepted could still be
 * refused by the agent after the machine had booted. Now every side checks the same schema.
 */

/**
 * How the OS gets onto the disk: the agent writes an image, or lays out the disks and copies
 * a tree (a role at a version, eDeploy's way), or a distribution's installer runs.
 */
export const DEPLOY_METHODS = ['image', 'preseed', 'kickstart', 'autoinstall', 'tree'] as const;
export type DeployMethod = (typeof DEPLOY_METHODS)[number];
export const DeployMethodSchema = Type.Enum(DEPLOY_METHODS, { description: 'how the OS gets onto the disk' });
export const isDeployMethod = (s: string): s is DeployMethod => (DEPLOY_METHODS as readonly string[]).includes(s);

/** The methods whose work the installer's agent does (the others boot a distribution's installer). */
export const AGENT_METHODS = ['image', 'tree'] as const satisfies readonly DeployMethod[];
export type AgentMethod = (typeof AGENT_METHODS)[number];
export const isAgentMethod = (m: DeployMethod): m is AgentMethod => (AGENT_METHODS as readonly string[]).includes(m);

/** A tree role's or version's name (`mysql`, `D7-F.1.0.0`). */
export const TREE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$';
/** A tree as deploys name it: `<role>-<version>` (eDeploy's `.edeploy` file names). */
export const TreeRefSchema = Type.String({ minLength: 3, maxLength: 201, pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]*-[A-Za-z0-9][A-Za-z0-9._+-]*$', description: 'tree deploys: ROLE-VERSION, e.g. mysql-D7-F.1.0.0' });

/**
 * eDeploy's ONSUCCESS, what a tree deploy does once the tree is on the disks: `kexec` into
 * the installed kernel, `reboot`, `halt` (power off) or `console` (stay in the installer).
 */
export const ON_SUCCESS = ['kexec', 'reboot', 'halt', 'console'] as const;
export type OnSuccess = (typeof ON_SUCCESS)[number];
export const OnSuccessSchema = Type.Enum(ON_SUCCESS, { description: "tree deploys: what the installer does once the tree is written (eDeploy's ONSUCCESS; default kexec)" });

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

/**
 * Kernel arguments for the installed system: printable ASCII separated by spaces, without the
 * quotes, `\`, `` ` ``, `$`, `;`, `|`, `<` and `>` that no boot loader, installer or shell along
 * the way escapes the same way (the templates' `cmdline` filter refuses the same).
 */
export const KERNEL_ARGS_PATTERN = '^[^"\'\\\\`$;|<>\\u0000-\\u001f\\u007f-\\uffff]*$';
export const KernelArgsSchema = Type.String({ maxLength: 4096, pattern: KERNEL_ARGS_PATTERN, description: "added to the installed system's kernel command line" });

/**
 * The installer and installed-system settings a profile's deploy configuration and a deploy
 * request may set (`os.*` in templates; docs/templates.md). Every field is optional: a deploy
 * request's value wins over the profile's, the profile's over the built-in default. The
 * patterns are the ones the render context checks, so a bad value is refused when it is
 * given, naming its field, not when a deploy renders it.
 */
export const OS_SETTING_PATTERNS = {
  url: '^https?://[^\\s\'"\\\\`$;|<>]+$',
  suite: '^[a-z0-9][a-z0-9.+-]*$',
  timezone: '^[A-Za-z0-9_+/-]+$',
  locale: '^[A-Za-z0-9_.@-]+$',
  keyboard: '^[A-Za-z0-9_-]+$',
  user: '^[a-z_][a-z0-9_-]{0,31}$',
  package: '^[A-Za-z0-9@^][A-Za-z0-9@^.+:=~_-]*$',
  console: '^[A-Za-z0-9=,._/: -]*$',
} as const;
const OsUrl = (description: string) => Type.String({ minLength: 1, maxLength: 2048, pattern: OS_SETTING_PATTERNS.url, description });
export const OsSettingsSchema = Type.Object(
  {
    mirror: Type.Optional(OsUrl('package mirror or installation tree (default per method: deb.debian.org, the Fedora release tree, the Ubuntu archive)')),
    suite: Type.Optional(Type.String({ maxLength: 64, pattern: OS_SETTING_PATTERNS.suite, description: 'distribution release, e.g. bookworm' })),
    timezone: Type.Optional(Type.String({ maxLength: 64, pattern: OS_SETTING_PATTERNS.timezone, description: 'time zone, e.g. Europe/Paris (default Etc/UTC)' })),
    locale: Type.Optional(Type.String({ maxLength: 64, pattern: OS_SETTING_PATTERNS.locale, description: 'locale, e.g. fr_FR.UTF-8 (default en_US.UTF-8)' })),
    keyboard: Type.Optional(Type.String({ maxLength: 64, pattern: OS_SETTING_PATTERNS.keyboard, description: 'keyboard layout (default us)' })),
    user: Type.Optional(Type.String({ maxLength: 32, pattern: OS_SETTING_PATTERNS.user, description: 'the default user (default plinth)' })),
    packages: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 256, pattern: OS_SETTING_PATTERNS.package }), { maxItems: 500, description: 'extra packages to install' }),
    ),
    console: Type.Optional(Type.String({ maxLength: 256, pattern: OS_SETTING_PATTERNS.console, description: 'console kernel arguments of installer and installed system' })),
    isoUrl: Type.Optional(OsUrl('autoinstall: the Ubuntu live server ISO the installer downloads')),
  },
  { additionalProperties: false, description: 'installer and installed-system settings (os.* in templates)' },
);
export type OsSettingsInput = Static<typeof OsSettingsSchema>;
export const OS_SETTING_KEYS = Object.keys(OsSettingsSchema.properties) as (keyof OsSettingsInput)[];

/** Per field: the request's value, else the profile's. */
export function mergeOsSettings(...layers: (OsSettingsInput | undefined)[]): OsSettingsInput {
  const out: Record<string, unknown> = {};
  for (const layer of layers) for (const [k, v] of Object.entries(layer ?? {})) if (v !== undefined) out[k] = v;
  return out as OsSettingsInput;
}
