import { describe, expect, it } from 'vitest';
import { loadConfig } from './load.js';
import { REDACTED, redactDatabaseUrl, settingsView } from './settings-view.js';

describe('the settings view', () => {
  it('keeps every setting but the secrets', () => {
    const key = Buffer.alloc(32, 9).toString('base64');
    const config = loadConfig({ flags: { secretKey: key, databaseUrl: 'postgres://plinth:hunter2@db.example:5432/plinth', listen: '127.0.0.1:9000' } });
    const view = settingsView(config);
    expect(JSON.stringify(view)).not.toContain(key);
    expect(JSON.stringify(view)).not.toContain('hunter2');
    expect(view).toMatchObject({ listen: '127.0.0.1:9000', secretKey: REDACTED, databaseUrl: `postgres://plinth:${encodeURIComponent(REDACTED)}@db.example:5432/plinth` });
    expect(view).not.toHaveProperty('ms');
    expect(Object.keys(view)).toContain('dhcp');
  });

  it('leaves URLs without a password alone and hides what it cannot parse', () => {
    expect(redactDatabaseUrl('')).toBe('');
    expect(redactDatabaseUrl('postgres://postgres@127.0.0.1:5432/plinth')).toBe('postgres://postgres@127.0.0.1:5432/plinth');
    expect(redactDatabaseUrl('not a url with a secret')).toBe(REDACTED);
  });
});
