import { ReaperService } from '../src/jobs/reaper.service.js';
import { FakeClock } from './utils/fake-clock.js';
import { startTestApp, type TestApp } from './utils/test-app.js';

const START = '2026-05-01T08:00:00.000Z';
const LEASE_MS = 30_000;

/**
 * Leases, heartbeats, the reaper, retries, fencing and cancel (SPEC §3-§5), with an injected
 * clock so every edge is exact to the millisecond. The reaper's own timer is set to an hour, so
 * only the explicit recoverExpiredLeases() calls below recover anything.
 */
describe('leases', () => {
  let t: TestApp;
  let reaper: ReaperService;
  const clock = new FakeClock(START);

  beforeAll(async () => {
    t = await startTestApp({
      clock,
      env: {
        LEASE_MS: String(LEASE_MS),
        REAPER_INTERVAL_MS: '3600000',
        BACKOFF_BASE_MS: '1000',
        BACKOFF_MAX_MS: '8000',
      },
    });
    reaper = t.app.get(ReaperService);
  });
  afterAll(() => t.close());
  beforeEach(() => clock.set(START));

  /** Creates a job in its own queue and claims it; returns the claim response body. */
  async function claimNew(queue: string, body: Record<string, unknown> = {}, claim: Record<string, unknown> = {}) {
    const created = await t.http.post('/jobs').send({ name: `job-${queue}`, queue, ...body });
    expect(created.status).toBe(201);
    const claimed = await t.http.post('/jobs/claim').send({ queues: [queue], workerId: `w-${queue}`, ...claim });
    expect(claimed.status).toBe(200);
    return claimed.body as { id: number; leaseToken: string; leaseExpiresAt: string; lockedAt: string };
  }

  const job = async (id: number) => (await t.http.get(`/jobs/${id}`)).body;
  const heartbeat = (id: number, leaseToken: string, leaseMs?: number) =>
    t.http.post(`/jobs/${id}/heartbeat`).send(leaseMs === undefined ? { leaseToken } : { leaseToken, leaseMs });
  const complete = (id: number, leaseToken: string, extra: Record<string, unknown> = {}) =>
    t.http.patch(`/jobs/${id}/status`).send({ status: 'succeeded', leaseToken, ...extra });

  describe('claim grants a lease', () => {
    it('with leaseMs from the request or LEASE_MS, and a fresh token per claim', async () => {
      const a = await claimNew('lease-a', { maxAttempts: 5 }, { leaseMs: 1_000 });
      expect(a.leaseExpiresAt).toBe(new Date(Date.parse(START) + 1_000).toISOString());
      const b = await claimNew('lease-b');
      expect(b.leaseExpiresAt).toBe(new Date(Date.parse(START) + LEASE_MS).toISOString());

      // The same worker claiming the same job again (after a failure) gets a new token.
      clock.advance(1);
      const failed = await t.http
        .patch(`/jobs/${a.id}/status`)
        .send({ status: 'failed', leaseToken: a.leaseToken, error: 'x' });
      clock.set(failed.body.runAt);
      const again = await t.http.post('/jobs/claim').send({ queues: ['lease-a'], workerId: 'w-lease-a' });
      expect(again.body.id).toBe(a.id);
      expect(again.body.leaseToken).toMatch(/^[0-9a-f]{32}$/);
      expect(again.body.leaseToken).not.toBe(a.leaseToken);
    });

    it.each([[999], [3_600_001], ['30000']])('refuses leaseMs %p with 400', async (leaseMs) => {
      const res = await t.http.post('/jobs/claim').send({ leaseMs });
      expect(res.status).toBe(400);
    });
  });

  describe('heartbeat', () => {
    it('sets heartbeatAt, moves leaseExpiresAt later and never changes lockedAt', async () => {
      const claim = await claimNew('hb-1');
      clock.advance(10_000);
      const res = await heartbeat(claim.id, claim.leaseToken, 60_000);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ leaseExpiresAt: new Date(Date.parse(START) + 70_000).toISOString() });
      const after = await job(claim.id);
      expect(after).toMatchObject({
        status: 'running',
        lockedAt: claim.lockedAt,
        heartbeatAt: new Date(Date.parse(START) + 10_000).toISOString(),
        leaseExpiresAt: res.body.leaseExpiresAt,
      });
    });

    it('never shortens the lease: a shorter leaseMs still moves the expiry strictly later', async () => {
      const claim = await claimNew('hb-2', {}, { leaseMs: 600_000 });
      clock.advance(1_000);
      const res = await heartbeat(claim.id, claim.leaseToken, 1_000);
      expect(res.status).toBe(200);
      expect(Date.parse(res.body.leaseExpiresAt)).toBe(Date.parse(claim.leaseExpiresAt) + 1);
    });

    it('answers 404 for an unknown job, 400 without a token or with a bad leaseMs', async () => {
      expect((await heartbeat(987_654, 'abc')).status).toBe(404);
      const claim = await claimNew('hb-3');
      const noToken = await t.http.post(`/jobs/${claim.id}/heartbeat`).send({});
      expect(noToken.status).toBe(400);
      expect(noToken.body.message).toContain('leaseToken must be a string');
      expect((await heartbeat(claim.id, claim.leaseToken, 10)).status).toBe(400);
      expect(
        (await t.http.post(`/jobs/${claim.id}/heartbeat`).send({ leaseToken: claim.leaseToken, x: 1 })).status,
      ).toBe(400);
    });

    it('answers 409 with a foreign token and changes nothing', async () => {
      const claim = await claimNew('hb-4');
      const before = await job(claim.id);
      clock.advance(5);
      const res = await heartbeat(claim.id, 'f'.repeat(32));
      expect(res.status).toBe(409);
      expect(res.body).toEqual({
        statusCode: 409,
        message: `Lease on job ${claim.id} is lost: the token is not the current lease (the job was claimed again, or the token is wrong)`,
        error: 'Conflict',
      });
      expect(await job(claim.id)).toEqual(before);
    });

    it('answers 409 once the job has finished', async () => {
      const claim = await claimNew('hb-5');
      expect((await complete(claim.id, claim.leaseToken)).status).toBe(200);
      const res = await heartbeat(claim.id, claim.leaseToken);
      expect(res.status).toBe(409);
      expect(res.body.message).toBe(`Lease on job ${claim.id} is lost: the job is succeeded`);
    });

    it.each([1_000, 5_000, 30_000, 3_600_000])(
      'keeps a job that heartbeats every lease (%i ms) from ever being reaped',
      async (leaseMs) => {
        const claim = await claimNew(`hb-keep-${leaseMs}`, {}, { leaseMs });
        for (let beat = 0; beat < 25; beat++) {
          clock.advance(leaseMs - 1);
          await reaper.recoverExpiredLeases();
          const res = await heartbeat(claim.id, claim.leaseToken, leaseMs);
          expect(res.status).toBe(200);
        }
        clock.advance(leaseMs - 1);
        const report = await reaper.recoverExpiredLeases();
        expect(report.requeued).not.toContain(claim.id);
        expect(await job(claim.id)).toMatchObject({ status: 'running', attempts: 1, lockedAt: claim.lockedAt });
      },
    );
  });

  describe('reaper', () => {
    it('recovers a lease 1 ms past expiry, not one 1 ms inside it', async () => {
      const claim = await claimNew('reap-edge', {}, { leaseMs: 1_000 });
      clock.set(new Date(Date.parse(claim.leaseExpiresAt) - 1));
      expect((await reaper.recoverExpiredLeases()).requeued).not.toContain(claim.id);
      expect((await job(claim.id)).status).toBe('running');

      clock.set(new Date(Date.parse(claim.leaseExpiresAt) + 1));
      expect((await reaper.recoverExpiredLeases()).requeued).toEqual([claim.id]);
      expect(await job(claim.id)).toMatchObject({
        status: 'queued',
        attempts: 1,
        leaseExpiresAt: null,
        lockedBy: 'w-reap-edge',
        error: `Lease expired at ${claim.leaseExpiresAt} while held by worker "w-reap-edge" (attempt 1 of 3)`,
      });
    });

    it('makes a recovered job claimable at once, without backoff', async () => {
      const claim = await claimNew('reap-again', {}, { leaseMs: 1_000 });
      clock.advance(1_001);
      await reaper.recoverExpiredLeases();
      const again = await t.http.post('/jobs/claim').send({ queues: ['reap-again'], workerId: 'second' });
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ id: claim.id, attempts: 2, lockedBy: 'second' });
    });

    it('fails a job whose last attempt expired, naming the worker that held it', async () => {
      const claim = await claimNew('reap-last', { maxAttempts: 1 }, { leaseMs: 1_000 });
      clock.advance(2_000);
      const report = await reaper.recoverExpiredLeases();
      expect(report).toEqual({ requeued: [], failed: [claim.id] });
      expect(await job(claim.id)).toMatchObject({
        status: 'failed',
        finishedAt: new Date(Date.parse(START) + 2_000).toISOString(),
        error: `Lease expired at ${claim.leaseExpiresAt} while held by worker "w-reap-last" (attempt 1 of 1)`,
      });
      expect((await t.http.post('/jobs/claim').send({ queues: ['reap-last'] })).status).toBe(204);
    });

    it('recovers many expired leases in one pass, beyond one batch', async () => {
      const queue = 'reap-many';
      for (let i = 0; i < 450; i++) await t.http.post('/jobs').send({ name: `m-${i}`, queue });
      const ids: number[] = [];
      for (let i = 0; i < 450; i++) {
        ids.push((await t.http.post('/jobs/claim').send({ queues: [queue], leaseMs: 1_000 })).body.id);
      }
      clock.advance(1_000);
      const report = await reaper.recoverExpiredLeases();
      expect(report.requeued.sort((a, b) => a - b)).toEqual(ids.sort((a, b) => a - b));
      expect(report.failed).toEqual([]);
    });
  });

  describe('fencing', () => {
    it('keeps a zombie worker (token A) from touching the job re-claimed under token B', async () => {
      const a = await claimNew('fence', {}, { leaseMs: 1_000 });
      clock.advance(1_001);
      expect((await reaper.recoverExpiredLeases()).requeued).toContain(a.id);
      const b = (await t.http.post('/jobs/claim').send({ queues: ['fence'], workerId: 'worker-b' })).body;
      expect(b.id).toBe(a.id);
      const underB = await job(a.id);

      const zombieDone = await complete(a.id, a.leaseToken, { result: 'from A' });
      expect(zombieDone.status).toBe(409);
      expect(zombieDone.body.message).toBe(
        `Lease on job ${a.id} is lost: the token is not the current lease (the job was claimed again, or the token is wrong)`,
      );
      const zombieFail = await t.http
        .patch(`/jobs/${a.id}/status`)
        .send({ status: 'failed', leaseToken: a.leaseToken });
      expect(zombieFail.status).toBe(409);
      const zombieBeat = await heartbeat(a.id, a.leaseToken);
      expect(zombieBeat.status).toBe(409);
      const zombieCancel = await t.http
        .patch(`/jobs/${a.id}/status`)
        .send({ status: 'cancelled', leaseToken: a.leaseToken });
      expect(zombieCancel.status).toBe(409);
      expect(await job(a.id)).toEqual(underB);

      const done = await complete(a.id, b.leaseToken, { result: 'from B' });
      expect(done.status).toBe(200);
      expect(done.body).toMatchObject({ status: 'succeeded', result: 'from B', lockedBy: 'worker-b', attempts: 2 });
    });
  });

  describe('retries', () => {
    it('claims an always-failing job exactly maxAttempts times, then fails it for good', async () => {
      const queue = 'always-fails';
      const created = await t.http.post('/jobs').send({ name: 'flaky', queue, maxAttempts: 4 });
      let claims = 0;
      const delays: number[] = [];
      for (let round = 0; round < 20; round++) {
        const claim = await t.http.post('/jobs/claim').send({ queues: [queue], workerId: 'w' });
        if (claim.status === 204) {
          const current = await job(created.body.id);
          if (current.status !== 'queued') break;
          // Not claimable a millisecond before runAt; claimable at runAt.
          clock.set(new Date(Date.parse(current.runAt) - 1));
          expect((await t.http.post('/jobs/claim').send({ queues: [queue] })).status).toBe(204);
          clock.set(current.runAt);
          continue;
        }
        claims++;
        const failedAt = clock.now().getTime();
        const res = await t.http
          .patch(`/jobs/${created.body.id}/status`)
          .send({ status: 'failed', leaseToken: claim.body.leaseToken, error: `boom ${claims}` });
        expect(res.status).toBe(200);
        if (res.body.status === 'queued') delays.push(Date.parse(res.body.runAt) - failedAt);
      }
      expect(claims).toBe(4);
      expect(await job(created.body.id)).toMatchObject({ status: 'failed', attempts: 4, error: 'boom 4' });
      // Backoff base 1000 ms doubling, jittered within [delay/2, delay]: 1000, 2000, 4000.
      expect(delays).toHaveLength(3);
      [1_000, 2_000, 4_000].forEach((delay, i) => {
        expect(delays[i]).toBeGreaterThanOrEqual(delay / 2);
        expect(delays[i]).toBeLessThanOrEqual(delay);
      });
    });

    it('fails at once with retry: false even when attempts remain', async () => {
      const claim = await claimNew('no-retry', { maxAttempts: 10 });
      const res = await t.http
        .patch(`/jobs/${claim.id}/status`)
        .send({ status: 'failed', leaseToken: claim.leaseToken, retry: false, error: 'bad input' });
      expect(res.body).toMatchObject({ status: 'failed', attempts: 1, error: 'bad input', finishedAt: START });
    });
  });

  describe('cancel', () => {
    it('cancels a queued job', async () => {
      const created = await t.http.post('/jobs').send({ name: 'c1', queue: 'cancel-q' });
      clock.advance(10);
      const res = await t.http.post(`/jobs/${created.body.id}/cancel`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        status: 'cancelled',
        finishedAt: new Date(Date.parse(START) + 10).toISOString(),
      });
      expect((await t.http.post('/jobs/claim').send({ queues: ['cancel-q'] })).status).toBe(204);
    });

    it('cancels a running job and revokes its lease: the worker then gets 409', async () => {
      const claim = await claimNew('cancel-run');
      const res = await t.http.post(`/jobs/${claim.id}/cancel`).send({});
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'cancelled', leaseExpiresAt: null });
      const beat = await heartbeat(claim.id, claim.leaseToken);
      expect(beat.status).toBe(409);
      expect(beat.body.message).toBe(`Lease on job ${claim.id} is lost: the job is cancelled`);
      expect((await complete(claim.id, claim.leaseToken)).status).toBe(409);
      expect((await job(claim.id)).status).toBe('cancelled');
    });

    it('answers 409 for a terminal job and 404 for an unknown one', async () => {
      const claim = await claimNew('cancel-done');
      await complete(claim.id, claim.leaseToken);
      const res = await t.http.post(`/jobs/${claim.id}/cancel`);
      expect(res.status).toBe(409);
      expect(res.body.message).toBe(`Job ${claim.id} is succeeded; it cannot move to cancelled`);
      expect((await t.http.post('/jobs/424242/cancel')).status).toBe(404);
    });

    it('fences a worker cancelling its own job to its lease: a null or stale token is refused', async () => {
      const claim = await claimNew('cancel-fenced');
      const nullToken = await t.http.patch(`/jobs/${claim.id}/status`).send({ status: 'cancelled', leaseToken: null });
      expect(nullToken.status).toBe(400);
      const stale = await t.http
        .patch(`/jobs/${claim.id}/status`)
        .send({ status: 'cancelled', leaseToken: 'f'.repeat(32) });
      expect(stale.status).toBe(409);
      const own = await t.http
        .patch(`/jobs/${claim.id}/status`)
        .send({ status: 'cancelled', leaseToken: claim.leaseToken });
      expect(own.status).toBe(200);
      expect(own.body.status).toBe('cancelled');
    });

    it('rejects a body with fields (400)', async () => {
      const created = await t.http.post('/jobs').send({ name: 'c2' });
      const res = await t.http.post(`/jobs/${created.body.id}/cancel`).send({ reason: 'why' });
      expect(res.status).toBe(400);
      expect((await job(created.body.id)).status).toBe('queued');
    });
  });
});
