import { Type } from 'typebox';
import type { App } from '../context.js';
import { ErrorResponse } from '../schemas.js';
import type { ProfileService } from '../../profiles/profile-service.js';
import type { MatchPreviewService } from '../../profiles/preview-service.js';
import {
  ApplyBody,
  ApplyResult,
  ExplanationSchema,
  ProfileInput,
  ProfileName,
  ProfileSchema,
  SimulateBody,
  SimulationSchema,
} from '../../profiles/schemas.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse };
const Params = Type.Object({ profile: ProfileName }, { additionalProperties: false });
const Force = Type.Object({ force: Type.Optional(Type.Boolean({ description: 'detach the machines that matched it' })) }, { additionalProperties: false });
/** Documents carry whole spec files and pools: larger than ordinary request bodies. */
const DOCUMENT_LIMIT = 64 * 1024 * 1024;

/** Profiles: eDeploy specs with an order, a quota, a pool and a deploy configuration (docs/matching.md). */
export function profileRoutes(profiles: ProfileService, preview: MatchPreviewService) {
  return async (app: App): Promise<void> => {
    app.get(
      '/api/v1/profiles',
      { schema: { tags: ['profiles'], summary: 'Every profile, in the order machines are matched against them', response: { 200: Type.Object({ items: Type.Array(ProfileSchema) }), ...errors } } },
      async () => ({ items: await profiles.listProfiles() }),
    );

    app.post(
      '/api/v1/profiles/apply',
      {
        bodyLimit: DOCUMENT_LIMIT,
        schema: {
          tags: ['profiles'],
          summary: 'Create or replace pools then profiles by name, in one transaction (a bad document changes nothing)',
          body: ApplyBody,
          response: { 200: ApplyResult, ...errors },
        },
      },
      async (req) => {
        const r = await profiles.apply(req.body);
        req.log.info({ profiles: r.profiles.map((p) => `${p.name}:${p.outcome}`), pools: r.pools.map((p) => `${p.name}:${p.outcome}`), by: req.principal?.name }, 'profiles applied');
        return r;
      },
    );

    app.post(
      '/api/v1/profiles/simulate',
      {
        bodyLimit: DOCUMENT_LIMIT,
        config: { role: 'reader' },
        schema: {
          tags: ['profiles'],
          summary: 'Which machine would get which profile and pool entry (the inventory, or the hardware lists given); changes nothing',
          body: SimulateBody,
          response: { 200: SimulationSchema, ...errors },
        },
        preValidation: async (req) => {
          req.body ??= {};
        },
      },
      async (req) => preview.simulate(req.body),
    );

    app.get(
      '/api/v1/profiles/explain/:machine',
      {
        schema: {
          tags: ['profiles'],
          summary: 'For each profile in order: does the machine match it, and if not the first rule that failed and why',
          params: Type.Object({ machine: Type.String({ description: 'machine id or name' }) }, { additionalProperties: false }),
          response: { 200: ExplanationSchema, ...errors },
        },
      },
      async (req) => preview.explain(req.params.machine),
    );

    app.get(
      '/api/v1/profiles/:profile',
      { schema: { tags: ['profiles'], summary: 'One profile', params: Params, response: { 200: ProfileSchema, ...errors } } },
      async (req) => profiles.getProfile(req.params.profile),
    );

    app.put(
      '/api/v1/profiles/:profile',
      {
        bodyLimit: DOCUMENT_LIMIT,
        schema: { tags: ['profiles'], summary: 'Create or replace one profile', params: Params, body: ProfileInput, response: { 200: ProfileSchema, 201: ProfileSchema, ...errors } },
      },
      async (req, reply) => {
        const r = await profiles.putProfile(req.params.profile, req.body);
        return reply.status(r.outcome === 'created' ? 201 : 200).send(r.profile);
      },
    );

    app.delete(
      '/api/v1/profiles/:profile',
      { schema: { tags: ['profiles'], summary: 'Delete a profile (refused while machines have it, unless force)', params: Params, querystring: Force, response: { 204: Type.Null(), ...errors } } },
      async (req, reply) => {
        const p = await profiles.deleteProfile(req.params.profile, { force: req.query.force ?? false });
        req.log.info({ profile: p.name, by: req.principal?.name }, 'profile deleted');
        return reply.status(204).send(null);
      },
    );
  };
}
