import { ConfigSchema, type Config } from './schema.js';

/** What stands in for a secret the settings view leaves out. */
export const REDACTED = '[redacted]';

/** A database URL with its password replaced (user, host and database stay readable). */
export function redactDatabaseUrl(url: string): string {
  if (!url) return url;
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = REDACTED;
    return u.toString();
  } catch {
    // Not a URL we can take apart: say nothing of it rather than risk a password.
    return REDACTED;
  }
}

/**
 * The controller's settings as an operator may read them (GET /api/v1/settings, the web UI's
 * Settings page): every setting of the configuration document, with the key for secrets at
 * rest and the database password left out.
 */
export function settingsView(config: Config): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  for (const key of Object.keys(ConfigSchema.properties) as (keyof typeof ConfigSchema.properties)[]) view[key] = config[key];
  view.secretKey = config.secretKey ? REDACTED : '';
  view.databaseUrl = redactDatabaseUrl(config.databaseUrl);
  return view;
}
