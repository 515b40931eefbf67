import { Transactor } from '../src/database/transactions.js';
import { startTestApp, type TestApp } from './utils/test-app.js';

/**
 * The hot statements must read an index in order, never sort or scan the table: otherwise a
 * claim or a reaper pass costs more with every job ever run. SQLite's EXPLAIN QUERY PLAN says
 * which index a statement uses and whether it needs a temporary sort.
 */
describe('query plans (SQLite)', () => {
  let t: TestApp;
  const now = '2026-01-01T00:00:00.000Z';

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  async function plan(sql: string, params: unknown[]): Promise<string> {
    const rows = await t.app
      .get(Transactor)
      .run((tx) => tx.rows<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params));
    return rows.map((row) => row.detail).join(' | ');
  }

  it.each([
    [
      'claim from all queues',
      `SELECT id FROM jobs WHERE status = 'queued' AND run_at <= ? ORDER BY priority DESC, run_at, id LIMIT 1`,
      [now],
      'jobs_claim_order',
    ],
    [
      'claim from one queue',
      `SELECT id FROM jobs WHERE status = 'queued' AND run_at <= ? AND queue IN (?) ORDER BY priority DESC, run_at, id LIMIT 1`,
      [now, 'gpu'],
      'jobs_queue_claim_order',
    ],
    [
      'reaper',
      `SELECT * FROM jobs WHERE status = 'running' AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT 200`,
      [now],
      'jobs_lease_expiry',
    ],
  ])('%s reads %s in order, with no sort', async (_what, sql, params, index) => {
    const detail = await plan(sql as string, params as unknown[]);
    expect(detail).toMatch(new RegExp(`USING (COVERING )?INDEX ${index} `));
    expect(detail).not.toContain('TEMP B-TREE');
    expect(detail).not.toMatch(/SCAN jobs(?! USING)/);
  });
});
