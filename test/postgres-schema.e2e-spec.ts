import { createApp } from '../src/app.setup.js';
import { loadConfig } from '../src/config/config.js';
import { call, type JobJson } from './utils/http.js';
import { onPostgres, TEST_POSTGRES_URL } from './utils/test-database.js';

/** DATABASE_SCHEMA may be any PostgreSQL identifier, up to the 63-character limit. */
describe('a PostgreSQL schema with the longest allowed name', () => {
  const schema = `s${process.pid}_`.padEnd(63, 'x');

  afterAll(async () => void (await onPostgres(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)));

  it('is created, migrated and serves creates and long-poll claims', async () => {
    const config = loadConfig({ DATABASE_URL: TEST_POSTGRES_URL, DATABASE_SCHEMA: schema });
    const app = await createApp(config, { logger: ['error'] });
    try {
      await app.listen(0, '127.0.0.1');
      const baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
      const waiting = call<JobJson>(baseUrl, 'POST', '/jobs/claim', { waitMs: 5_000 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const created = await call<JobJson>(baseUrl, 'POST', '/jobs', { name: 'long-schema' });
      expect(created.status).toBe(201);
      const claimed = await waiting;
      expect(claimed.status).toBe(200);
      expect(claimed.body.id).toBe(created.body.id);
    } finally {
      await app.close();
    }
  });
});

describe('NOTIFY payloads that are not ours', () => {
  const schema = `n${process.pid}_${Date.now()}`;

  afterAll(async () => void (await onPostgres(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)));

  it('are ignored: the server keeps serving and waking long-poll claims', async () => {
    const config = loadConfig({ DATABASE_URL: TEST_POSTGRES_URL, DATABASE_SCHEMA: schema });
    const app = await createApp(config, { logger: [] });
    try {
      await app.listen(0, '127.0.0.1');
      const baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
      for (const payload of ['x', 'null', '[1]', '{"queue":1}', '']) {
        await onPostgres(`SELECT pg_notify('jobs_ready_${schema}', '${payload}')`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect((await call(baseUrl, 'GET', '/health')).status).toBe(200);
      const waiting = call<JobJson>(baseUrl, 'POST', '/jobs/claim', { waitMs: 5_000 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const created = await call<JobJson>(baseUrl, 'POST', '/jobs', { name: 'after-noise' });
      const claimed = await waiting;
      expect(claimed.status).toBe(200);
      expect(claimed.body.id).toBe(created.body.id);
    } finally {
      await app.close();
    }
  });
});
