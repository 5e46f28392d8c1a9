import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative, resolve, isAbsolute } from 'node:path';
import type { App } from '../context.js';
import { PlinthError } from '../../core/errors.js';

/**
 * Where `npm run build` puts the web UI (scripts/bundle-ui.mjs). This file is three levels
 * below the package both as source (src/api/routes) and built (dist/api/routes).
 */
export const UI_DIR = fileURLToPath(new URL('../../../dist/ui/', import.meta.url));

/** The page runs only its own script and style, talks only to this controller, and is framed by no one. */
const CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** Requests the UI never answers: the API and the machines' endpoints keep their own 404s. */
const NOT_UI = /^\/(api|agent|boot|install)(\/|$)/;

/**
 * The web UI: files of dist/ui at /, and index.html for any other page address a browser asks
 * for (the UI routes in the browser: /machines/web-01 is a page, not a file). Only files are
 * served here; everything the UI shows comes from the API with the signed-in token. Other
 * routes win over this catch-all; unknown paths that are not pages answer the API's 404.
 */
export async function uiRoutes(app: App, dir = UI_DIR): Promise<void> {
  const root = resolve(dir);
  app.get('/*', { schema: { hide: true }, config: { role: 'public' } }, async (req, reply) => {
    const path = req.url.split('?')[0]!;
    const notFound = () => new PlinthError('not_found', `no route ${req.method} ${path}`);
    if (NOT_UI.test(path)) throw notFound();
    let rel: string;
    try {
      rel = decodeURIComponent(path).replace(/^\/+/, '');
    } catch {
      throw notFound();
    }
    const abs = resolve(root, rel);
    const inside = relative(root, abs);
    if (rel && !inside.startsWith('..') && !isAbsolute(inside) && existsSync(abs) && statSync(abs).isFile()) {
      // index.html names app.js and app.css without a version: a browser asks again each time (ETag keeps it cheap).
      return reply.header('cache-control', 'no-cache').sendFile(inside, root);
    }
    // A page address (no file extension) from a browser gets the app; anything else is a missing file.
    const wantsPage = !/\.[A-Za-z0-9]+$/.test(path) && (req.headers.accept ?? '').includes('text/html');
    if (!wantsPage) throw notFound();
    if (!existsSync(join(root, 'index.html'))) throw new PlinthError('not_found', `the web UI is not built (no ${join(root, 'index.html')}): run npm run build`);
    return reply
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CSP)
      .type('text/html; charset=utf-8')
      .sendFile('index.html', root);
  });
}
