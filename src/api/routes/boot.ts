import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { badBootQueryField, type BootService, type BootQuery } from '../../boot/service.js';
import { unidentifiedScript } from '../../boot/ipxe.js';
import type { Store } from '../../store/database.js';
import type { Clock } from '../../core/clock.js';
import { iso } from '../../core/clock.js';
import { recordStage } from '../../runs/trace.js';
import type { InstallerLocator } from '../../boot/service.js';
import type { DeployRuns } from '../../deploy/deploy-runs.js';
import type { ImageStore } from '../../images/store.js';
import { PlinthError, validation } from '../../core/errors.js';
import { AgentTicketAnswerSchema } from '../../protocol/agent.js';
import type { SendFile } from '../send-file.js';

const IPXE = 'text/plain; charset=utf-8';
/** The iPXE binaries served over HTTP as well as TFTP. */
const IPXE_BINARIES = ['ipxe.efi', 'snponly.efi', 'undionly.kpxe'] as const;
const NOT_IPXE = `# Plinth: this is the iPXE entry point; it answers iPXE (User-Agent iPXE/...) only.
# Other clients that follow the DHCP boot filename (an installer's DHCP preseeding) get this
# empty file. To see the script iPXE gets: curl -A iPXE/1.0 <this URL>
`;

/**
 * The boot endpoints machines call. They are public by nature (firmware cannot carry a
 * token). What they hand out may reach anyone who sends a machine's identity: a run's ticket
 * (until an installer claims the run), scripts, public files. URLs in scripts come from
 * configuration or the connection's local address, never from the Host header.
 */
export function bootRoutes(deps: { boot: BootService; store: Store; clock: Clock; installer: InstallerLocator; deployRuns: DeployRuns; images: ImageStore; sendFile: SendFile; ipxeDir: string }) {
  return async (app: FastifyInstance): Promise<void> => {
    const ctx = (req: FastifyRequest) => ({
      baseUrl: deps.boot.baseUrl({ protocol: req.protocol, localAddress: req.socket.localAddress, localPort: req.socket.localPort }),
      remoteAddr: req.ip ?? null,
    });

    app.get(
      '/boot.ipxe',
      { config: { role: 'public' }, schema: { tags: ['boot'], summary: 'The iPXE script DHCP points machines at', security: [] } },
      async (req, reply) => {
        const agent = req.headers['user-agent'];
        // A DHCP boot filename that is a URL reaches more than iPXE: Debian's installer loads
        // it as a preseed file, which an iPXE script would break. Such clients get a file of
        // comments (an empty preseed), and no chain nonce is spent on them.
        // UEFI HTTP Boot firmware runs an EFI binary, not a script: it gets iPXE itself,
        // which then fetches this URL again as iPXE.
        if (agent && /\bUefiHttpBoot\//i.test(agent)) return sendIpxeBinary(reply, 'ipxe.efi');
        if (agent && !/\biPXE\//i.test(agent)) return reply.type(IPXE).send(NOT_IPXE);
        return reply.type(IPXE).send(await deps.boot.chain(ctx(req)));
      },
    );

    const sendIpxeBinary = (reply: FastifyReply, file: (typeof IPXE_BINARIES)[number]) => {
      const path = join(deps.ipxeDir, file);
      if (!existsSync(path)) return reply.status(404).type('text/plain').send(`${file} is not in ${deps.ipxeDir} (tftp.root): install Debian's ipxe package\n`);
      return deps.sendFile(reply.type('application/efi'), path);
    };

    app.get(
      '/boot/:file',
      {
        config: { role: 'public' },
        schema: {
          tags: ['boot'],
          summary: 'The iPXE binaries (tftp.root) over HTTP: ipxe.efi for UEFI HTTP Boot, undionly.kpxe',
          security: [],
          params: Type.Object({ file: Type.String({ enum: [...IPXE_BINARIES] }) }),
        },
      },
      async (req, reply) => sendIpxeBinary(reply, (req.params as { file: (typeof IPXE_BINARIES)[number] }).file),
    );

    app.get(
      '/boot/machine.ipxe',
      {
        config: { role: 'public' },
        schema: {
          tags: ['boot'],
          summary: "A machine's own boot script, decided from its lifecycle",
          security: [],
          querystring: Type.Object({}, { additionalProperties: Type.String({ maxLength: 128 }) }),
        },
        // iPXE never sees JSON: even a malformed request gets a script (checked below).
        attachValidation: true,
      },
      async (req, reply) => {
        const bad = badBootQueryField(req.query as Record<string, unknown>);
        if (bad) return reply.status(400).type(IPXE).send(unidentifiedScript(`boot parameter ${bad.field} ${bad.why}`));
        const { script } = await deps.boot.machineScript(req.query as BootQuery, ctx(req));
        return reply.type(IPXE).send(script);
      },
    );

    app.get(
      '/boot/agent-ticket',
      {
        config: { role: 'public' },
        schema: {
          tags: ['boot'],
          summary: "An ISO-booted installer's run ticket, asked for with the machine's identity (the parameters of /boot/machine.ipxe)",
          security: [],
          querystring: Type.Object({}, { additionalProperties: Type.String({ maxLength: 128 }) }),
          response: { 200: AgentTicketAnswerSchema },
        },
      },
      async (req) => {
        const bad = badBootQueryField(req.query as Record<string, unknown>);
        if (bad) throw validation(bad.field, bad.why);
        return deps.boot.agentTicket(req.query as BootQuery, ctx(req));
      },
    );

    app.get(
      '/boot/installer.iso',
      {
        config: { role: 'public' },
        schema: {
          tags: ['boot'],
          summary: "The installer as a bootable ISO (BIOS and UEFI) for virtual media, with this controller's URL on its kernel command line; a machine's own (machine: its id) also with its fixed boot address",
          security: [],
          querystring: Type.Object({ machine: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })) }, { additionalProperties: false }),
        },
      },
      async (req, reply) => {
        const { machine } = req.query as { machine?: string };
        const path = await deps.boot.installerIso(ctx(req), machine !== undefined ? { machine } : {});
        if (!path) return reply.status(404).type('text/plain').send('the installer is not built on this controller: run `plinth installer build`\n');
        return deps.sendFile(reply.type('application/x-iso9660-image'), path);
      },
    );

    const sendArtifact = async (req: FastifyRequest, reply: FastifyReply, path: string, stage: string) => {
      const attempt = (req.query as { attempt?: string }).attempt;
      if (attempt) {
        const row = await deps.store.db.selectFrom('boot_attempts').select(['machine_id', 'run_id']).where('id', '=', attempt).executeTakeFirst();
        if (row) {
          await recordStage(deps.store.db, {
            machineId: row.machine_id,
            attemptId: attempt,
            runId: row.run_id,
            at: iso(deps.clock.now()),
            stage,
            detail: req.headers.range ? { range: req.headers.range } : null,
          });
        }
      }
      return deps.sendFile(reply, path);
    };

    app.get(
      '/boot/artifacts/:token/:kind/:name',
      {
        config: { role: 'public' },
        schema: {
          tags: ['boot'],
          summary: "A deploy's rendered artifact (preseed, kickstart, autoinstall, cloud-init), by the deploy's callback token",
          security: [],
          params: Type.Object({ token: Type.String({ maxLength: 128 }), kind: Type.String({ maxLength: 32 }), name: Type.String({ maxLength: 64 }) }),
        },
      },
      async (req, reply) => {
        const { token, kind, name } = req.params as { token: string; kind: string; name: string };
        const found = await deps.deployRuns.runByCallback(token);
        if (!found) throw new PlinthError('not_found', 'no active deploy has this callback token');
        const artifact = await deps.deployRuns.deliverArtifact(found.run, `${kind}/${name}`);
        await deps.deployRuns.artifactFetched(found.run, found.machine, `${kind}/${name}`);
        return reply.type(artifact.contentType).header('etag', `"${artifact.sha256}"`).send(artifact.body);
      },
    );

    app.get(
      '/boot/files/:name',
      {
        config: { role: 'public' },
        schema: {
          tags: ['boot'],
          summary: 'Kernels, initrds and ISOs from the image store, for installer-native deploys (Range supported)',
          security: [],
          params: Type.Object({ name: Type.String({ maxLength: 100 }) }),
        },
      },
      async (req, reply) => {
        const image = await deps.images.get((req.params as { name: string }).name);
        if (image.kind === 'disk') throw new PlinthError('not_found', `image '${image.name}' is a disk image; disk images are served to their deploys only`);
        return deps.sendFile(reply, deps.images.path(image));
      },
    );

    app.get(
      '/boot/installer/:file',
      {
        config: { role: 'public' },
        schema: {
          tags: ['boot'],
          summary: "The installer's kernel and initramfs",
          security: [],
          params: Type.Object({ file: Type.String({ enum: ['vmlinuz', 'initrd.img'] }) }),
          querystring: Type.Object({ attempt: Type.Optional(Type.String({ maxLength: 64 })) }),
        },
      },
      async (req, reply) => {
        const { file } = req.params as { file: 'vmlinuz' | 'initrd.img' };
        const paths = deps.installer();
        const path = paths ? (file === 'vmlinuz' ? paths.kernel : paths.initrd) : null;
        if (!path || !existsSync(path)) {
          return reply.status(404).type('text/plain').send('the installer is not built on this controller: run `plinth installer build`\n');
        }
        return sendArtifact(req, reply, path, file === 'vmlinuz' ? 'kernel' : 'initrd');
      },
    );
  };
}
