import { Type, type Static } from 'typebox';
import { SshPublicKeySchema } from './agent.js';

/**
 * Tateru's Machine Service API (`/v1/…`), as Tateru's published client and Ansible collection
 * use it. The client differs from Tateru's OpenAPI document, and the client is what is served:
 *
 *   GET  /v1/machines?alias=A                    → [TateruMachine]  (name, serial, asset tag or UUID; a list)
 *   GET  /v1/machines/{uuid}                     → TateruMachine   (reads managedBy)
 *   POST {managedBy}/v1/machines/{uuid}/boot-installer  BootInstallerRequest → BootInstallerAnswer (200)
 *   POST /v1/machines/{uuid}/installer-callback  CallbackRequest  → CallbackAnswer  (the installer, with its run ticket)
 *
 * The machine's `uuid` is its SMBIOS system UUID, or Plinth's machine id for a machine that
 * has not reported one.
 */
const Strict = { additionalProperties: false } as const;

export const TateruSshPortsSchema = Type.Object({ installer: Type.Integer({ minimum: 1, maximum: 65535 }) }, Strict);

export const TateruMachineSchema = Type.Object(
  {
    uuid: Type.String(),
    serialNumber: Type.Optional(Type.String()),
    assetTag: Type.Optional(Type.String()),
    name: Type.String(),
    managedBy: Type.String({ description: "the controller's URL API clients use; boot-installer is POSTed there" }),
    installerAddress: Type.Optional(Type.String({ description: 'where the held installer is reached; absent until its SSH server reported in' })),
    sshPorts: Type.Optional(TateruSshPortsSchema),
  },
  Strict,
);
export type TateruMachine = Static<typeof TateruMachineSchema>;

export const TateruListQuerySchema = Type.Object({ alias: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) }, Strict);
export const TateruMachineParamsSchema = Type.Object({ uuid: Type.String({ minLength: 1, maxLength: 255 }) }, Strict);

export const TateruBootInstallerRequestSchema = Type.Object(
  {
    ssh_pub_key: SshPublicKeySchema,
    nonce: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'the same nonce again gives the same operation, not a second one' })),
  },
  Strict,
);
export type TateruBootInstallerRequest = Static<typeof TateruBootInstallerRequestSchema>;

export const TateruBootInstallerAnswerSchema = Type.Object({
  uuid: Type.String(),
  name: Type.String(),
  state: Type.String(),
  run: Type.String({ description: "Plinth's run holding the installer" }),
  nonce: Type.Union([Type.String(), Type.Null()]),
});
export type TateruBootInstallerAnswer = Static<typeof TateruBootInstallerAnswerSchema>;

export const TateruCallbackRequestSchema = Type.Object(
  {
    sshPorts: TateruSshPortsSchema,
    serialNumber: Type.Optional(Type.String({ maxLength: 255 })),
    assetTag: Type.Optional(Type.String({ maxLength: 255 })),
    /** Not in Tateru's document: the installer's host keys, so clients can pin them. */
    hostKeys: Type.Optional(Type.Array(SshPublicKeySchema, { maxItems: 8 })),
    /** Not in Tateru's document: the addresses the installer has (else the one the call came from). */
    addresses: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
  },
  Strict,
);
export type TateruCallbackRequest = Static<typeof TateruCallbackRequestSchema>;

export const TateruCallbackAnswerSchema = Type.Object({ ssh_pub_key: Type.String() });
