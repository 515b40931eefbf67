import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import type TestAgent from 'supertest/lib/agent.js';
import type { Clock } from '../../src/common/clock.js';
import { createApp } from '../../src/app.setup.js';
import { loadConfig, type AppConfig } from '../../src/config/config.js';
import { createTestDatabase } from './test-database.js';

export interface TestApp {
  app: NestExpressApplication;
  config: AppConfig;
  /** supertest bound to the listening server over real HTTP. */
  http: TestAgent;
  baseUrl: string;
  close(): Promise<void>;
}

/**
 * Starts the app exactly as main.ts does (createApp), on a fresh database of the suite's kind
 * (a SQLite file in a temp folder, or a fresh PostgreSQL schema), listening on an ephemeral
 * loopback port. `env` takes the same variables as the server.
 */
export async function startTestApp(options: { env?: Record<string, string>; clock?: Clock } = {}): Promise<TestApp> {
  const database = await createTestDatabase();
  const config = loadConfig({ ...database.env, ...options.env });
  const app = await createApp(config, { clock: options.clock, logger: ['error'] });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  const baseUrl = `http://127.0.0.1:${address.port}`;
  return {
    app,
    config,
    http: request(baseUrl),
    baseUrl,
    async close() {
      await app.close();
      await database.drop();
    },
  };
}
