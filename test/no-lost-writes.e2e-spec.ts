import { Transactor } from '../src/database/transactions.js';
import { insertJob } from '../src/jobs/job.queries.js';
import { call, listAllJobs, type JobJson } from './utils/http.js';
import { startTestApp, type TestApp } from './utils/test-app.js';

class DeliberateRollback extends Error {}

/**
 * SPEC §5: a concurrent request never sees or loses another request's uncommitted or rolled-back
 * work. On SQLite all requests share one connection; these tests fail if units of work nest.
 */
describe('no lost acknowledged write', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('keeps all 300 acknowledged creates while 150 units of work roll back and 100 claims run alongside', async () => {
    const transactor = t.app.get(Transactor);
    const CREATES = 300;
    const ROLLBACKS = 150;
    const CLAIMS = 100;
    const seed = await Promise.all(
      Array.from({ length: 50 }, (_, i) => call<JobJson>(t.baseUrl, 'POST', '/jobs', { name: `seed-${i}` })),
    );
    const seedIds = seed.map((res) => res.body.id);
    // Cancelled, so every later request to run them is refused with 409 and rolls back.
    for (const id of seedIds) {
      expect((await call(t.baseUrl, 'PATCH', `/jobs/${id}/status`, { status: 'cancelled' })).status).toBe(200);
    }

    const acknowledged: JobJson[] = [];
    // Enough committed, claimable jobs before the mix starts that every claim finds one even on
    // PostgreSQL, where claims run alongside the creates instead of after them.
    for (let i = 0; i < CLAIMS + 50; i++) {
      const res = await call<JobJson>(t.baseUrl, 'POST', '/jobs', { name: `ready-${i}`, payload: { i } });
      expect(res.status).toBe(201);
      acknowledged.push(res.body);
    }

    const work: Promise<unknown>[] = [];
    const claimedIds: number[] = [];
    let rolledBack = 0;
    let conflicts = 0;
    for (let i = 0; i < Math.max(CREATES, ROLLBACKS, CLAIMS); i++) {
      if (i < CREATES) {
        work.push(
          call<JobJson>(t.baseUrl, 'POST', '/jobs', { name: `ack-${i}`, payload: { i } }).then((res) => {
            expect(res.status).toBe(201);
            acknowledged.push(res.body);
          }),
        );
      }
      if (i < ROLLBACKS) {
        // A unit of work that writes a job and then fails: the write must vanish, and only it.
        work.push(
          transactor
            .run(async (tx) => {
              await insertJob(
                tx,
                {
                  name: `doomed-${i}`,
                  queue: 'default',
                  priority: 0,
                  payload: null,
                  maxAttempts: 1,
                  runAt: new Date(),
                  idempotencyKey: null,
                  requestHash: null,
                },
                new Date(),
              );
              await new Promise((resolve) => setImmediate(resolve));
              throw new DeliberateRollback();
            })
            .catch((error: unknown) => {
              expect(error).toBeInstanceOf(DeliberateRollback);
              rolledBack++;
            }),
        );
        // A request the state machine refuses (its transaction rolls back): 409, nothing changes.
        work.push(
          call(t.baseUrl, 'PATCH', `/jobs/${seedIds[i % seedIds.length]}/status`, { status: 'running' }).then((res) => {
            expect(res.status).toBe(409);
            conflicts++;
          }),
        );
      }
      if (i < CLAIMS) {
        work.push(
          call<JobJson>(t.baseUrl, 'POST', '/jobs/claim', { workerId: 'w' }).then((res) => {
            expect([200, 204]).toContain(res.status);
            if (res.status === 200) claimedIds.push(res.body.id);
          }),
        );
      }
    }
    await Promise.all(work);

    expect(rolledBack).toBe(ROLLBACKS);
    expect(conflicts).toBe(ROLLBACKS);
    expect(acknowledged).toHaveLength(CLAIMS + 50 + CREATES);
    expect(claimedIds).toHaveLength(CLAIMS);
    expect(new Set(claimedIds).size).toBe(CLAIMS);

    const stored = await listAllJobs(t.baseUrl);
    const byId = new Map(stored.map((job) => [job.id, job]));
    // Exactly the acknowledged jobs exist: none lost, none of the rolled-back ones present.
    expect(stored).toHaveLength(seedIds.length + acknowledged.length);
    expect(stored.filter((job) => job.name.startsWith('doomed-'))).toEqual([]);
    const claimed = new Set(claimedIds);
    for (const job of acknowledged) {
      const now = byId.get(job.id);
      expect(now).toBeDefined();
      expect(now?.name).toBe(job.name);
      expect(now?.payload).toEqual(job.payload);
      expect(now?.status).toBe(claimed.has(job.id) ? 'running' : 'queued');
    }
    for (const id of seedIds) expect(byId.get(id)?.status).toBe('cancelled');
    expect(
      stored
        .filter((job) => job.status === 'running')
        .map((job) => job.id)
        .sort(),
    ).toEqual([...claimedIds].sort());
  });

  it("never lets a unit of work see another one's uncommitted row", async () => {
    const transactor = t.app.get(Transactor);
    const seen: number[] = [];
    const writer = transactor
      .run(async (tx) => {
        await tx.rows(`UPDATE jobs SET name = 'uncommitted' WHERE id = (SELECT MIN(id) FROM jobs)`);
        await new Promise((resolve) => setTimeout(resolve, 20));
        throw new DeliberateRollback();
      })
      .catch((error: unknown) => expect(error).toBeInstanceOf(DeliberateRollback));
    const readers = Array.from({ length: 20 }, () =>
      transactor.run(async (tx) => {
        const rows = await tx.rows<{ n: number }>(`SELECT COUNT(*) AS n FROM jobs WHERE name = 'uncommitted'`);
        seen.push(Number(rows[0].n));
      }),
    );
    await Promise.all([writer, ...readers]);
    expect(seen).toEqual(new Array(20).fill(0));
  });
});
