import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { backends } from '../support/backends.js';
import { startController } from '../support/controller.js';
import { inProcessCli } from '../support/cli.js';

const key = () => randomBytes(32).toString('base64');

describe.each(backends)('the secret key at start-up on $name', (backend) => {
  it('refuses to start with a key that cannot decrypt the stored secrets, in one line and a non-zero exit', async () => {
    const db = await backend.create();
    const sealedWith = key();
    try {
      const first = await startController(db, { secretKey: sealedWith });
      const r = await first.api('POST', '/api/v1/appliances', { name: 'r1', type: 'redfish', address: 'https://10.0.9.1', username: 'u', password: 'p' });
      expect(r.statusCode, r.body).toBe(201);
      await first.close();

      const other = key();
      await expect(startController(db, { secretKey: other })).rejects.toThrow(
        /^secretKey: the configured secret key \(PLINTH_SECRET_KEY or the data directory's secret\.key\) cannot decrypt the secrets in the database \(appliance r1's password\)/,
      );
      const serve = inProcessCli({
        PLINTH_DATA_DIR: db.dataDir,
        ...(db.url.startsWith('postgres') ? { PLINTH_DATABASE_URL: db.url } : {}),
        PLINTH_SECRET_KEY: other,
        PLINTH_LISTEN: '127.0.0.1:0',
        PLINTH_LOG_LEVEL: 'silent',
      });
      const refused = await serve('serve');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^plinth: secretKey: .* cannot decrypt the secrets in the database \(appliance r1's password\): start with the key they were sealed with\n$/);

      // The key they were sealed with starts it, and the password is there.
      const again = await startController(db, { secretKey: sealedWith });
      expect((await again.api('GET', '/api/v1/appliances/r1')).statusCode).toBe(200);
      await again.close();
    } finally {
      await db.drop();
    }
  }, 120_000);

  it('starts with any key while nothing is sealed', async () => {
    const db = await backend.create();
    try {
      await (await startController(db, { secretKey: key() })).close();
      await (await startController(db, { secretKey: key() })).close();
    } finally {
      await db.drop();
    }
  });
});
