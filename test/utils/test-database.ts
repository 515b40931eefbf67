import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * Which database the shared suite runs on: `TEST_DATABASE=postgres` (set by the jest project of
 * that name) or SQLite. On PostgreSQL each test database is a fresh schema of
 * TEST_POSTGRES_URL, dropped afterwards; an unreachable server fails the test, never skips it.
 */
export const TEST_DATABASE: 'sqlite' | 'postgres' = process.env.TEST_DATABASE === 'postgres' ? 'postgres' : 'sqlite';
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  /** The server variables that point at it: DATABASE_URL (and DATABASE_SCHEMA). */
  env: Record<string, string>;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  if (TEST_DATABASE === 'postgres') {
    const schema = `t_${process.pid}_${randomBytes(6).toString('hex')}`;
    return {
      env: { DATABASE_URL: TEST_POSTGRES_URL, DATABASE_SCHEMA: schema },
      drop: async () => void (await onPostgres(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)),
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'orchestrator-test-'));
  return {
    env: { DATABASE_URL: `sqlite:${join(dir, 'jobs.db')}` },
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Runs one statement on TEST_POSTGRES_URL, on a connection of its own; its rows. */
export async function onPostgres<T extends pg.QueryResultRow = pg.QueryResultRow>(
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}
