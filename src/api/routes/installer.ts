import { Readable } from 'node:stream';
import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { ErrorResponse, StringEnum } from '../schemas.js';
import { PlinthError } from '../../core/errors.js';
import { INSTALLER_UPLOAD_FILES, INSTALLER_UPLOAD_LIMITS, receiveInstallerFile } from '../../installer/upload.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse, 422: ErrorResponse };

/**
 * What the CLI asks a controller before a build (`GET /api/v1/controller`: is its data
 * directory the one this host sees?), and the upload of an installer built elsewhere.
 */
export async function installerRoutes(app: App, s: AppServices): Promise<void> {
  // Uploads arrive as a raw byte stream (the image routes may have said so already).
  if (!app.hasContentTypeParser('application/octet-stream')) {
    app.addContentTypeParser('application/octet-stream', { bodyLimit: INSTALLER_UPLOAD_LIMITS['initrd.img'] }, (_req, payload, done) => done(null, payload));
  }
  app.get(
    '/api/v1/controller',
    {
      schema: {
        tags: ['meta'],
        summary: 'This controller: its id, version, database kind and data directory (path and id, for a CLI to tell whether it runs beside it)',
        response: {
          200: Type.Object({
            id: Type.String({ description: 'this controller process (host, pid, random suffix)' }),
            version: Type.String(),
            database: StringEnum(['sqlite', 'postgres']),
            dataDir: Type.Object({
              path: Type.String({ description: "the data directory's absolute path on the controller host" }),
              id: Type.String({ description: 'the random id in DATA_DIR/data-dir.id: the same id at the same path means the same directory' }),
            }),
          }),
          ...errors,
        },
      },
    },
    async () => s.identity,
  );

  app.put(
    '/api/v1/installer/:file',
    {
      config: { role: 'admin' },
      bodyLimit: INSTALLER_UPLOAD_LIMITS['initrd.img'],
      schema: {
        tags: ['boot'],
        summary: "Upload a file of an installer built elsewhere (application/octet-stream, streamed; renamed into place whole): the kernel, the initramfs, then manifest.json",
        params: Type.Object({ file: StringEnum(INSTALLER_UPLOAD_FILES) }, { additionalProperties: false }),
        querystring: Type.Object(
          { sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'checksum of the bytes sent; a mismatch keeps nothing' })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ file: Type.String(), bytes: Type.Integer(), sha256: Type.String() }), ...errors },
      },
    },
    async (req) => {
      if (!(req.body instanceof Readable)) throw new PlinthError('unsupported_media_type', 'send the file as application/octet-stream');
      const r = await receiveInstallerFile(s.config.dataDir, req.params.file, req.body, req.query.sha256);
      req.log.info({ file: r.file, bytes: r.bytes, sha256: r.sha256, by: req.principal?.name }, 'installer file uploaded');
      return r;
    },
  );
}
