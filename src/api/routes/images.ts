import { Readable } from 'node:stream';
import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { ErrorResponse, StringEnum } from '../schemas.js';
import { PlinthError } from '../../core/errors.js';
import { DISK_LAYOUTS, IMAGE_KINDS, IMAGE_NAME_PATTERN } from '../../images/store.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse, 422: ErrorResponse };
export const ImageSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    kind: StringEnum([...IMAGE_KINDS]),
    sourceFormat: StringEnum(['raw', 'qcow2']),
    layout: Type.Union([StringEnum([...DISK_LAYOUTS]), Type.Null()], { description: 'disk images: a whole disk (its own partition table) or a partition image (one file system, for the console\'s keep-partitions); null for the other kinds' }),
    sizeBytes: Type.Integer({ description: 'size of the stored (raw) bytes' }),
    sha256: Type.String({ description: 'SHA-256 of the stored (raw) bytes, what deploys verify' }),
    firmware: Type.Union([Type.Array(Type.String()), Type.Null()]),
    manifest: Type.Unknown(),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Image' },
);
const Params = Type.Object({ image: Type.String() }, { additionalProperties: false });
const UPLOAD_LIMIT = 1024 ** 4; // 1 TiB: images are streamed to disk, never buffered

export async function imageRoutes(app: App, s: AppServices): Promise<void> {
  // Uploads arrive as a raw byte stream, handed to the store unread.
  app.addContentTypeParser('application/octet-stream', { bodyLimit: UPLOAD_LIMIT }, (_req, payload, done) => done(null, payload));

  app.get(
    '/api/v1/images',
    { schema: { tags: ['images'], summary: 'The image store', response: { 200: Type.Object({ items: Type.Array(ImageSchema) }), ...errors } } },
    async () => ({ items: await s.images.list() }),
  );

  app.get(
    '/api/v1/images/:image',
    { schema: { tags: ['images'], summary: 'One image', params: Params, response: { 200: ImageSchema, ...errors } } },
    async (req) => s.images.get(req.params.image),
  );

  app.post(
    '/api/v1/images',
    {
      bodyLimit: UPLOAD_LIMIT,
      schema: {
        tags: ['images'],
        summary: 'Upload an image as application/octet-stream (raw or qcow2; qcow2 disk images are stored raw)',
        querystring: Type.Object(
          {
            name: Type.String({ pattern: IMAGE_NAME_PATTERN }),
            kind: Type.Optional(StringEnum([...IMAGE_KINDS], { default: 'disk' })),
            format: Type.Optional(StringEnum(['raw', 'qcow2'], { description: 'checked against the file; detected when absent' })),
            sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'checksum of the bytes sent; a mismatch keeps nothing' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: ImageSchema, ...errors },
      },
    },
    async (req, reply) => {
      const q = req.query;
      // Only the octet-stream parser above hands over a stream; any other accepted type was parsed.
      if (!(req.body instanceof Readable)) throw new PlinthError('unsupported_media_type', 'send the image as application/octet-stream');
      const image = await s.images.upload({
        name: q.name,
        kind: q.kind ?? 'disk',
        body: req.body,
        ...(q.format ? { format: q.format } : {}),
        ...(q.sha256 ? { expectedSha256: q.sha256 } : {}),
      });
      req.log.info({ image: image.name, bytes: image.sizeBytes, by: req.principal?.name }, 'image uploaded');
      return reply.status(201).send(image);
    },
  );

  app.post(
    '/api/v1/images/:image/adopt',
    {
      config: { role: 'admin' },
      schema: { tags: ['images'], summary: 'Register an image `plinth image build` left in the store directory', params: Params, response: { 200: ImageSchema, ...errors } },
    },
    async (req) => s.images.adopt(req.params.image),
  );

  app.delete(
    '/api/v1/images/:image',
    { schema: { tags: ['images'], summary: 'Delete an image no deployed machine runs and no running deploy uses (409 names the machines)', params: Params, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      const image = await s.images.delete(req.params.image);
      req.log.info({ image: image.name, by: req.principal?.name }, 'image deleted');
      return reply.status(204).send(null);
    },
  );
}
