import { call, inParallel, listAllJobs, type JobJson } from './utils/http.js';
import { startTestApp, type TestApp } from './utils/test-app.js';

describe('claim (SPEC §5: each claim hands a job to exactly one worker)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('hands each of 500 jobs to exactly one of 32 concurrent workers', async () => {
    const JOBS = 500;
    const WORKERS = 32;
    const created = await inParallel(JOBS, 16, (i) => call<JobJson>(t.baseUrl, 'POST', '/jobs', { name: `job-${i}` }));
    expect(created.every((res) => res.status === 201)).toBe(true);

    const claimsByWorker: number[][] = Array.from({ length: WORKERS }, () => []);
    const statuses = new Map<number, number>();
    const started = performance.now();
    await Promise.all(
      claimsByWorker.map(async (claims, worker) => {
        // Each worker claims until the queue answers 204 (bounded: it cannot need more than JOBS).
        for (let round = 0; round <= JOBS; round++) {
          const res = await call<JobJson>(t.baseUrl, 'POST', '/jobs/claim', { workerId: `worker-${worker}` });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status === 204) {
            expect(res.text).toBe('');
            return;
          }
          expect(res.status).toBe(200);
          expect(res.body.lockedBy).toBe(`worker-${worker}`);
          claims.push(res.body.id);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;

    const claimed = claimsByWorker.flat();
    expect(claimed).toHaveLength(JOBS);
    expect(new Set(claimed).size).toBe(JOBS);
    expect(new Set(claimed)).toEqual(new Set(created.map((res) => res.body.id)));
    expect(statuses.get(200)).toBe(JOBS);
    expect(statuses.get(204)).toBe(WORKERS);
    expect([...statuses.keys()].sort()).toEqual([200, 204]);

    const jobs = await listAllJobs(t.baseUrl);
    expect(jobs.every((job) => job.status === 'running' && job.attempts === 1)).toBe(true);
    // Who holds each job agrees with who was told it claimed it.
    const holder = new Map(jobs.map((job) => [job.id, job.lockedBy]));
    claimsByWorker.forEach((claims, worker) => {
      for (const id of claims) expect(holder.get(id)).toBe(`worker-${worker}`);
    });
    console.log(
      `claim: ${JOBS} jobs by ${WORKERS} workers in ${seconds.toFixed(2)} s = ${(JOBS / seconds).toFixed(0)} claims/s`,
    );
  });

  it('claims in order: highest priority, then earliest runAt, then lowest id', async () => {
    const ids: Record<string, number> = {};
    for (const [name, body] of [
      ['low', { priority: -5 }],
      ['high-later', { priority: 7, runAt: '2020-01-02T00:00:00.000Z' }],
      ['high-earlier', { priority: 7, runAt: '2020-01-01T00:00:00.000Z' }],
      ['mid-a', {}],
      ['mid-b', {}],
      ['future', { priority: 1000, delayMs: 3_600_000 }],
    ] as const) {
      ids[name] = (await call<JobJson>(t.baseUrl, 'POST', '/jobs', { name, ...body })).body.id;
    }
    const order: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await call<JobJson>(t.baseUrl, 'POST', '/jobs/claim', {});
      if (res.status === 204) break;
      order.push(res.body.id);
    }
    expect(order).toEqual([ids['high-earlier'], ids['high-later'], ids['mid-a'], ids['mid-b'], ids.low]);
  });
});
