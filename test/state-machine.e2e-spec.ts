import fc from 'fast-check';
import type { Response, Test } from 'supertest';
import { FakeClock } from './utils/fake-clock.js';
import { startTestApp, type TestApp } from './utils/test-app.js';

/**
 * SPEC §3 (state machine) and the PATCH /jobs/:id/status row of §4, over real HTTP on a real
 * SQLite file. Time comes from a FakeClock: every rejected request is sent after the clock moved,
 * so a write that should not have happened would show in `updatedAt`.
 */

type Status = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
const STATUSES: readonly Status[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/** SPEC §3 written out here, independently of src/jobs/job-state.ts. */
const ALLOWED: Readonly<Record<Status, readonly Status[]>> = {
  queued: ['running', 'cancelled'],
  running: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
};
const isAllowed = (from: Status, to: Status): boolean => ALLOWED[from].includes(to);
const isTerminal = (status: Status): boolean => ALLOWED[status].length === 0;

// The lease outlives every clock move in this file, so a reaper (if one runs) never interferes.
const LEASE_MS = 3_600_000;
const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 8_000;
const MAX_ATTEMPTS = 3;
const MISSING_ID = 987_654_321;
const BOGUS_TOKEN = 'f'.repeat(32);
const RESULT = { accuracy: 0.761, labels: ['cat', 'dog'], nested: { ok: true } };

interface JobBody {
  id: number;
  name: string;
  queue: string;
  status: Status;
  attempts: number;
  maxAttempts: number;
  runAt: string;
  lockedAt: string | null;
  lockedBy: string | null;
  leaseExpiresAt: string | null;
  heartbeatAt: string | null;
  result: unknown;
  error: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  leaseToken?: string;
}

const clock = new FakeClock('2026-03-01T12:00:00.000Z');
let t: TestApp;
let queueSeq = 0;

beforeAll(async () => {
  t = await startTestApp({
    clock,
    env: {
      LEASE_MS: String(LEASE_MS),
      BACKOFF_BASE_MS: String(BACKOFF_BASE_MS),
      BACKOFF_MAX_MS: String(BACKOFF_MAX_MS),
      MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    },
  });
});

afterAll(async () => {
  await t?.close();
});

/** Each job lives in its own queue, so claiming it never picks up another test's job. */
const freshQueue = (): string => `sm-${++queueSeq}`;
const nowIso = (): string => clock.now().toISOString();
const isoPlus = (ms: number): string => new Date(clock.now().getTime() + ms).toISOString();

async function createJob(body: Record<string, unknown> = {}): Promise<JobBody> {
  const res = await t.http
    .post('/jobs')
    .send({ name: 'state-machine', queue: freshQueue(), ...body })
    .expect(201);
  return res.body as JobBody;
}

async function claim(queue: string): Promise<JobBody & { leaseToken: string }> {
  const res = await t.http
    .post('/jobs/claim')
    .send({ queues: [queue], workerId: 'worker-1' })
    .expect(200);
  expect(typeof res.body.leaseToken).toBe('string');
  return res.body as JobBody & { leaseToken: string };
}

function patchStatus(id: number | string, body: Record<string, unknown>): Test {
  return t.http.patch(`/jobs/${id}/status`).send(body);
}

async function getText(id: number): Promise<string> {
  const res = await t.http.get(`/jobs/${id}`).expect(200);
  return res.text;
}

async function getJob(id: number): Promise<JobBody> {
  return JSON.parse(await getText(id)) as JobBody;
}

function withoutToken(job: JobBody): JobBody {
  const copy = { ...job };
  delete copy.leaseToken;
  return copy;
}

/** A lease token: present, and long enough to be unguessable. */
const LEASE_TOKEN = expect.stringMatching(/^.{16,}$/);

/** Brings a fresh job into `status` through the HTTP API only. */
async function jobIn(status: Status): Promise<{ job: JobBody; leaseToken?: string }> {
  switch (status) {
    case 'queued':
      return { job: await createJob() };
    case 'running': {
      const created = await createJob();
      const claimed = await claim(created.queue);
      expect(claimed.id).toBe(created.id);
      return { job: withoutToken(claimed), leaseToken: claimed.leaseToken };
    }
    case 'succeeded': {
      const created = await createJob();
      const { leaseToken } = await claim(created.queue);
      await patchStatus(created.id, { status: 'succeeded', leaseToken, result: { done: 1 } }).expect(200);
      return { job: await getJob(created.id) };
    }
    case 'failed': {
      const created = await createJob({ maxAttempts: 1 });
      const { leaseToken } = await claim(created.queue);
      await patchStatus(created.id, { status: 'failed', leaseToken, error: 'out of memory' }).expect(200);
      return { job: await getJob(created.id) };
    }
    case 'cancelled': {
      const created = await createJob();
      await patchStatus(created.id, { status: 'cancelled' }).expect(200);
      return { job: await getJob(created.id) };
    }
  }
}

/** The request body for asking for `to`, with the fields that status may carry. */
function requestFor(to: Status, leaseToken?: string): Record<string, unknown> {
  const body: Record<string, unknown> = { status: to };
  if (leaseToken !== undefined) body.leaseToken = leaseToken;
  if (to === 'succeeded') body.result = RESULT;
  if (to === 'failed') body.error = 'CUDA out of memory';
  if (to === 'running') body.workerId = 'operator-7';
  return body;
}

async function expectConflictAndNoChange(res: Response, id: number, before: string): Promise<void> {
  expect(res.status).toBe(409);
  expect(res.body).toEqual({ statusCode: 409, message: expect.any(String), error: 'Conflict' });
  expect(res.body.message).toMatch(new RegExp(`\\b${id}\\b`));
  expect(await getText(id)).toBe(before);
}

async function expectBadRequestAndNoChange(res: Response, id: number, before: string): Promise<void> {
  expect(res.status).toBe(400);
  expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
  expect(res.body.message).toBeTruthy();
  expect(await getText(id)).toBe(before);
}

interface Cell {
  name: string;
  from: Status;
  to: Status;
  withToken: boolean;
}

const ALLOWED_OUTCOME: Record<string, string> = {
  'queued->running': '200, claimed: attempts+1, lockedAt, leaseExpiresAt and a leaseToken',
  'queued->cancelled': '200, cancelled with finishedAt',
  'running->succeeded': '200, succeeded with finishedAt and the result stored',
  'running->failed': '200, attempts left: queued again after a backoff, error kept',
  'running->cancelled': '200, cancelled with finishedAt, lease revoked',
};

function outcomeOf(from: Status, to: Status, withToken: boolean): string {
  if (withToken && to === 'running') return '400 (a claim grants a new lease, it takes no token), nothing changes';
  return ALLOWED_OUTCOME[`${from}->${to}`] ?? '409 naming job, current and requested status, nothing changes';
}

/** 25 (from, to) pairs; a running job is asked both without and with its lease token. */
const CELLS: Cell[] = STATUSES.flatMap((from) =>
  STATUSES.flatMap((to) =>
    (from === 'running' ? [false, true] : [false]).map((withToken) => ({
      name: `${from} -> ${to}${withToken ? ' with its lease token' : ''}: ${outcomeOf(from, to, withToken)}`,
      from,
      to,
      withToken,
    })),
  ),
);

describe('PATCH /jobs/:id/status state machine', () => {
  describe('every cell of the transition table', () => {
    it('covers all 25 (from, to) pairs', () => {
      expect(new Set(CELLS.map((cell) => `${cell.from}->${cell.to}`)).size).toBe(25);
    });

    it.each(CELLS)('$name', async ({ from, to, withToken }) => {
      const { job, leaseToken } = await jobIn(from);
      expect(job.status).toBe(from);
      const before = await getText(job.id);
      // Move time so that any write, even one that should not happen, changes updatedAt.
      clock.advance(1_000);
      const res = await patchStatus(job.id, requestFor(to, withToken ? leaseToken : undefined));

      if (withToken && to === 'running') {
        await expectBadRequestAndNoChange(res, job.id, before);
        return;
      }
      if (!isAllowed(from, to)) {
        await expectConflictAndNoChange(res, job.id, before);
        expect(res.body.message).toContain(from);
        expect(res.body.message).toContain(to);
        return;
      }

      expect(res.status).toBe(200);
      const now = nowIso();
      const after = res.body as JobBody;
      switch (`${from}->${to}`) {
        case 'queued->running':
          expect(after).toEqual({
            ...job,
            status: 'running',
            attempts: job.attempts + 1,
            lockedAt: now,
            lockedBy: 'operator-7',
            leaseExpiresAt: isoPlus(LEASE_MS),
            heartbeatAt: null,
            updatedAt: now,
            leaseToken: LEASE_TOKEN,
          });
          break;
        case 'queued->cancelled':
        case 'running->cancelled':
          expect(after).toEqual({
            ...job,
            status: 'cancelled',
            leaseExpiresAt: null,
            finishedAt: now,
            updatedAt: now,
          });
          break;
        case 'running->succeeded':
          expect(after).toEqual({
            ...job,
            status: 'succeeded',
            result: RESULT,
            leaseExpiresAt: null,
            finishedAt: now,
            updatedAt: now,
          });
          break;
        case 'running->failed': {
          // attempts 1 of 3: back to the queue after a backoff of base * 2^0, jittered.
          expect(after).toEqual({
            ...job,
            status: 'queued',
            error: 'CUDA out of memory',
            runAt: expect.any(String),
            leaseExpiresAt: null,
            finishedAt: null,
            updatedAt: now,
          });
          const wait = Date.parse(after.runAt) - clock.now().getTime();
          expect(wait).toBeGreaterThanOrEqual(BACKOFF_BASE_MS / 2);
          expect(wait).toBeLessThanOrEqual(BACKOFF_BASE_MS);
          break;
        }
        default:
          throw new Error(`untested allowed transition ${from}->${to}`);
      }
      // GET shows the same job, without the lease secret.
      expect(await getJob(job.id)).toEqual(withoutToken(after));
    });
  });

  describe('failure outcomes', () => {
    it('fails a job for good on its last attempt: status failed, finishedAt set, runAt untouched', async () => {
      const created = await createJob({ maxAttempts: 1 });
      const { leaseToken } = await claim(created.queue);
      const before = await getJob(created.id);
      clock.advance(500);
      const res = await patchStatus(created.id, { status: 'failed', leaseToken, error: 'segfault' }).expect(200);
      expect(res.body).toEqual({
        ...before,
        status: 'failed',
        error: 'segfault',
        leaseExpiresAt: null,
        finishedAt: nowIso(),
        updatedAt: nowIso(),
      });
    });

    it('fails a job for good with retry:false even when attempts remain', async () => {
      const created = await createJob({ maxAttempts: 5 });
      const { leaseToken } = await claim(created.queue);
      const before = await getJob(created.id);
      clock.advance(500);
      const res = await patchStatus(created.id, { status: 'failed', leaseToken, error: 'bad input', retry: false });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        ...before,
        status: 'failed',
        error: 'bad input',
        leaseExpiresAt: null,
        finishedAt: nowIso(),
        updatedAt: nowIso(),
      });
    });

    it('re-queues a failed attempt until runAt, doubles the backoff, and keeps the error when a retry succeeds', async () => {
      const created = await createJob({ maxAttempts: 3 });
      const first = await claim(created.queue);
      const failed1 = (await patchStatus(created.id, { status: 'failed', leaseToken: first.leaseToken, error: 'e1' }))
        .body as JobBody;
      expect(failed1.status).toBe('queued');
      const due1 = Date.parse(failed1.runAt);
      expect(due1 - clock.now().getTime()).toBeGreaterThanOrEqual(500);
      expect(due1 - clock.now().getTime()).toBeLessThanOrEqual(1_000);

      // Not claimable a millisecond before runAt (nor by its id through the queue), claimable at it.
      clock.set(new Date(due1 - 1));
      await t.http
        .post('/jobs/claim')
        .send({ queues: [created.queue] })
        .expect(204);
      clock.set(new Date(due1));
      const second = await claim(created.queue);
      expect(second).toMatchObject({ id: created.id, attempts: 2, error: 'e1', lockedAt: nowIso() });
      expect(second.leaseToken).not.toBe(first.leaseToken);

      // Second failure: base * 2^1 = 2000 ms, jittered within [1000, 2000].
      const failed2 = (await patchStatus(created.id, { status: 'failed', leaseToken: second.leaseToken, error: 'e2' }))
        .body as JobBody;
      expect(failed2).toMatchObject({ status: 'queued', attempts: 2, error: 'e2' });
      const wait2 = Date.parse(failed2.runAt) - clock.now().getTime();
      expect(wait2).toBeGreaterThanOrEqual(1_000);
      expect(wait2).toBeLessThanOrEqual(2_000);

      clock.set(failed2.runAt);
      const third = await claim(created.queue);
      expect(third.attempts).toBe(3);
      const done = await patchStatus(created.id, { status: 'succeeded', leaseToken: third.leaseToken, result: 7 });
      expect(done.status).toBe(200);
      expect(done.body).toMatchObject({ status: 'succeeded', attempts: 3, result: 7, error: 'e2' });
    });
  });

  describe('fencing through PATCH', () => {
    it.each(['succeeded', 'failed', 'cancelled'] as const)(
      'refuses %s with a lease token that is not the current one, then accepts the right token',
      async (to) => {
        const { job, leaseToken } = await jobIn('running');
        const before = await getText(job.id);
        clock.advance(1_000);
        const wrong = await patchStatus(job.id, requestFor(to, BOGUS_TOKEN));
        await expectConflictAndNoChange(wrong, job.id, before);

        const right = await patchStatus(job.id, requestFor(to, leaseToken));
        expect(right.status).toBe(200);
        expect(right.body.status).toBe(to === 'failed' ? 'queued' : to);
      },
    );

    it("refuses another running job's lease token", async () => {
      const a = await jobIn('running');
      const b = await jobIn('running');
      const before = await getText(a.job.id);
      clock.advance(1_000);
      const res = await patchStatus(a.job.id, requestFor('succeeded', b.leaseToken));
      await expectConflictAndNoChange(res, a.job.id, before);
    });

    it('refuses the token of an earlier lease after the job was claimed again', async () => {
      const created = await createJob();
      const first = await claim(created.queue);
      const requeued = await patchStatus(created.id, { status: 'failed', leaseToken: first.leaseToken }).expect(200);
      clock.set(requeued.body.runAt);
      const second = await claim(created.queue);
      const before = await getText(created.id);
      clock.advance(1_000);

      for (const to of ['succeeded', 'failed', 'cancelled'] as const) {
        const stale = await patchStatus(created.id, requestFor(to, first.leaseToken));
        await expectConflictAndNoChange(stale, created.id, before);
      }
      const current = await patchStatus(created.id, requestFor('succeeded', second.leaseToken));
      expect(current.status).toBe(200);
      expect(current.body).toMatchObject({ status: 'succeeded', attempts: 2, result: RESULT });
    });

    it('refuses a lease token on cancelling a queued job, which holds no lease', async () => {
      const { job } = await jobIn('queued');
      const before = await getText(job.id);
      clock.advance(1_000);
      const res = await patchStatus(job.id, { status: 'cancelled', leaseToken: BOGUS_TOKEN });
      await expectConflictAndNoChange(res, job.id, before);
    });
  });

  describe('requests that make no sense are refused with 400 and change nothing', () => {
    const combinations: [string, Status, (token: string) => Record<string, unknown>][] = [
      ['result with failed', 'running', (token) => ({ status: 'failed', leaseToken: token, result: { x: 1 } })],
      ['error with succeeded', 'running', (token) => ({ status: 'succeeded', leaseToken: token, error: 'oops' })],
      ['workerId with succeeded', 'running', (token) => ({ status: 'succeeded', leaseToken: token, workerId: 'w' })],
      ['retry with succeeded', 'running', (token) => ({ status: 'succeeded', leaseToken: token, retry: true })],
      ['leaseMs with cancelled', 'running', () => ({ status: 'cancelled', leaseMs: 60_000 })],
      ['leaseToken with running', 'queued', () => ({ status: 'running', leaseToken: BOGUS_TOKEN })],
      ['an unknown field', 'running', (token) => ({ status: 'succeeded', leaseToken: token, reason: 'done' })],
      ['status missing', 'queued', () => ({ error: 'x' })],
      ['an empty body', 'queued', () => ({})],
      ['status "done" (not in the enum)', 'queued', () => ({ status: 'done' })],
      ['status "RUNNING" (case matters)', 'queued', () => ({ status: 'RUNNING' })],
      ['status null', 'queued', () => ({ status: null })],
      ['status as a number', 'queued', () => ({ status: 1 })],
      ['retry as a string', 'running', (token) => ({ status: 'failed', leaseToken: token, retry: 'false' })],
      ['leaseToken as a number', 'running', () => ({ status: 'succeeded', leaseToken: 12345 })],
      ['an empty leaseToken', 'running', () => ({ status: 'succeeded', leaseToken: '' })],
      ['error as an object', 'running', (token) => ({ status: 'failed', leaseToken: token, error: { m: 1 } })],
    ];

    it.each(combinations)('%s (on a %s job)', async (_label, from, body) => {
      const { job, leaseToken } = await jobIn(from);
      const before = await getText(job.id);
      clock.advance(1_000);
      const res = await patchStatus(job.id, body(leaseToken ?? BOGUS_TOKEN));
      await expectBadRequestAndNoChange(res, job.id, before);
    });

    it.each(['abc', '1.5', '1e3', '0x10', 'NaN', '12abc'])(
      'a job id that is not an integer ("%s") gets 400 on PATCH and GET',
      async (id) => {
        const patch = await patchStatus(id, { status: 'cancelled' });
        expect(patch.status).toBe(400);
        expect(patch.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
        const get = await t.http.get(`/jobs/${id}`);
        expect(get.status).toBe(400);
        expect(get.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      },
    );

    it('an unknown job id gets 404 naming the id, on PATCH and GET', async () => {
      for (const res of [
        await patchStatus(MISSING_ID, { status: 'cancelled' }),
        await t.http.get(`/jobs/${MISSING_ID}`),
      ]) {
        expect(res.status).toBe(404);
        expect(res.body).toEqual({
          statusCode: 404,
          message: expect.stringContaining(String(MISSING_ID)),
          error: 'Not Found',
        });
      }
    });
  });

  describe('model-based: random operation sequences agree with an in-test model of §3', () => {
    type TokenChoice = 'none' | 'latest' | 'previous' | 'bogus';
    type Op =
      | { kind: 'create'; maxAttempts: number }
      | { kind: 'claim' }
      | { kind: 'advance'; ms: number }
      | {
          kind: 'patch';
          slot: number;
          /** 'allowed': one of the transitions the job's current status allows (picked by `pick`). */
          to: Status | 'allowed';
          pick: number;
          token: TokenChoice;
          retry: boolean | undefined;
          strayRetry: boolean;
        }
      | { kind: 'patchMissing'; to: Status };

    interface PatchRequest {
      status: Status;
      leaseToken?: string;
      retry?: boolean;
      result?: unknown;
      error?: string;
    }

    interface ModelJob {
      id: number;
      status: Status;
      attempts: number;
      maxAttempts: number;
      runAt: number;
      /** The current lease while running, else null. */
      lease: string | null;
      /** Every token this job was granted, oldest first. */
      tokens: string[];
      error: string | null;
      result: unknown;
    }

    const opArb: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({ kind: fc.constant('create' as const), maxAttempts: fc.integer({ min: 1, max: 4 }) }),
      },
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('claim' as const) }) },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('advance' as const),
          ms: fc.oneof(fc.constantFrom(499, 1_000, 2_000, BACKOFF_MAX_MS), fc.integer({ min: 0, max: BACKOFF_MAX_MS })),
        }),
      },
      {
        weight: 10,
        arbitrary: fc.record({
          kind: fc.constant('patch' as const),
          // Which of the sequence's jobs (modulo how many exist).
          slot: fc.integer({ min: 0, max: 2 }),
          // Half the time a transition the machine allows, so sequences get deep into §3.
          to: fc.constantFrom<Status | 'allowed'>(...STATUSES, 'allowed', 'allowed', 'allowed', 'allowed', 'allowed'),
          pick: fc.nat({ max: 59 }),
          token: fc.constantFrom<TokenChoice>('none', 'latest', 'latest', 'previous', 'bogus'),
          retry: fc.constantFrom(undefined, true, false),
          // Also send `retry` with a status other than failed (a 400) now and then.
          strayRetry: fc.constantFrom(false, false, false, false, false, false, false, true),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('patchMissing' as const), to: fc.constantFrom(...STATUSES) }),
      },
    );

    /** What the contract says a PATCH must answer, before looking at the app. */
    function predictPatch(request: PatchRequest, job: ModelJob | undefined, now: number): number {
      if (request.retry !== undefined && request.status !== 'failed') return 400;
      if (request.status === 'running' && request.leaseToken !== undefined) return 400;
      if (!job) return 404;
      if (!isAllowed(job.status, request.status)) return 409;
      // A job is not claimable before its runAt, not even by id.
      if (request.status === 'running' && job.runAt > now) return 409;
      if (request.status !== 'running' && request.leaseToken !== undefined && request.leaseToken !== job.lease) {
        return 409;
      }
      return 200;
    }

    /**
     * The allowed transitions, weighted towards progress (a failure more often than a success or
     * a cancel) so that sequences reach retries, backoff and re-claims rather than dying early.
     */
    const PROGRESS: Readonly<Record<Status, readonly Status[]>> = {
      queued: ['running', 'running', 'cancelled'],
      running: ['failed', 'failed', 'failed', 'succeeded', 'cancelled'],
      succeeded: [],
      failed: [],
      cancelled: [],
    };

    function resolveTarget(to: Status | 'allowed', pick: number, job: ModelJob | undefined): Status {
      if (to !== 'allowed') return to;
      const choices = job ? PROGRESS[job.status] : [];
      return choices.length > 0 ? choices[pick % choices.length] : STATUSES[pick % STATUSES.length];
    }

    function expectJobMatchesModel(actual: JobBody, model: ModelJob): void {
      expect({
        id: actual.id,
        status: actual.status,
        attempts: actual.attempts,
        maxAttempts: actual.maxAttempts,
        runAt: actual.runAt,
        error: actual.error,
        result: actual.result,
        running: actual.leaseExpiresAt !== null,
        finished: actual.finishedAt !== null,
      }).toEqual({
        id: model.id,
        status: model.status,
        attempts: model.attempts,
        maxAttempts: model.maxAttempts,
        runAt: new Date(model.runAt).toISOString(),
        error: model.error,
        result: model.result,
        running: model.status === 'running',
        finished: isTerminal(model.status),
      });
    }

    async function runSequence(ops: Op[]): Promise<void> {
      const queue = freshQueue();
      const jobs: ModelJob[] = [];
      const allTokens = new Set<string>();

      const acceptLease = (model: ModelJob, token: unknown): void => {
        expect(typeof token).toBe('string');
        expect(allTokens.has(token as string)).toBe(false);
        allTokens.add(token as string);
        model.tokens.push(token as string);
        model.lease = token as string;
        model.status = 'running';
        model.attempts += 1;
      };

      for (const [step, op] of ops.entries()) {
        // Every step happens at a later instant, so an unwanted write would move updatedAt.
        clock.advance(1);
        const now = clock.now().getTime();

        if (op.kind === 'advance') {
          clock.advance(op.ms);
        } else if (op.kind === 'create') {
          const res = await t.http.post('/jobs').send({ name: `step-${step}`, queue, maxAttempts: op.maxAttempts });
          expect(res.status).toBe(201);
          const model: ModelJob = {
            id: res.body.id,
            status: 'queued',
            attempts: 0,
            maxAttempts: op.maxAttempts,
            runAt: now,
            lease: null,
            tokens: [],
            error: null,
            result: null,
          };
          expectJobMatchesModel(res.body, model);
          jobs.push(model);
        } else if (op.kind === 'claim') {
          // Claim order: priority (all 0), then earliest runAt, then lowest id, among due jobs.
          const due = jobs
            .filter((job) => job.status === 'queued' && job.runAt <= now)
            .sort((a, b) => a.runAt - b.runAt || a.id - b.id);
          const res = await t.http.post('/jobs/claim').send({ queues: [queue], workerId: 'prop-worker' });
          if (due.length === 0) {
            expect(res.status).toBe(204);
            expect(res.text).toBe('');
          } else {
            expect(res.status).toBe(200);
            const model = due[0];
            acceptLease(model, res.body.leaseToken);
            expectJobMatchesModel(res.body, model);
          }
        } else {
          const job = op.kind === 'patch' && jobs.length > 0 ? jobs[op.slot % jobs.length] : undefined;
          const to = op.kind === 'patch' ? resolveTarget(op.to, op.pick, job) : op.to;
          const request: PatchRequest = { status: to };
          if (op.kind === 'patch') {
            const token = {
              none: undefined,
              latest: job?.tokens.at(-1),
              previous: job?.tokens.at(-2),
              bogus: BOGUS_TOKEN,
            }[op.token];
            if (token !== undefined) request.leaseToken = token;
            if (to === 'failed' || op.strayRetry) request.retry = op.retry;
          }
          if (to === 'succeeded') request.result = { step };
          if (to === 'failed') request.error = `failure at step ${step}`;
          const before = job ? await getText(job.id) : undefined;

          const expected = predictPatch(request, job, now);
          const res = await patchStatus(job?.id ?? MISSING_ID, { ...request });
          expect({ step, request, status: res.status }).toEqual({ step, request, status: expected });

          if (expected !== 200) {
            expect(res.body.statusCode).toBe(expected);
            if (job) expect(await getText(job.id)).toBe(before);
            continue;
          }
          const model = job as ModelJob;
          switch (to) {
            case 'running':
              acceptLease(model, res.body.leaseToken);
              break;
            case 'succeeded':
              model.status = 'succeeded';
              model.result = { step };
              model.lease = null;
              break;
            case 'cancelled':
              model.status = 'cancelled';
              model.lease = null;
              break;
            case 'failed': {
              model.error = `failure at step ${step}`;
              model.lease = null;
              if (request.retry !== false && model.attempts < model.maxAttempts) {
                model.status = 'queued';
                const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (model.attempts - 1));
                const wait = Date.parse(res.body.runAt) - now;
                expect(wait).toBeGreaterThanOrEqual(delay / 2);
                expect(wait).toBeLessThanOrEqual(delay);
                model.runAt = Date.parse(res.body.runAt);
              } else {
                model.status = 'failed';
              }
              break;
            }
            default:
              throw new Error(`the model never predicts 200 for ${to}`);
          }
          expect('leaseToken' in res.body).toBe(to === 'running');
          expectJobMatchesModel(res.body, model);
          expectJobMatchesModel(await getJob(model.id), model);
        }
      }

      // At the end, the whole queue as listed is exactly the model.
      const listed = await t.http.get('/jobs').query({ queue, limit: 500 }).expect(200);
      expect(listed.body.items).toHaveLength(jobs.length);
      listed.body.items.forEach((item: JobBody, index: number) => expectJobMatchesModel(item, jobs[index]));
    }

    // 1-3 jobs first (so most operations hit a job), then up to 12 random operations.
    const sequenceArb = fc
      .tuple(
        fc.array(fc.record({ kind: fc.constant('create' as const), maxAttempts: fc.integer({ min: 1, max: 4 }) }), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.array(opArb, { minLength: 1, maxLength: 12, size: 'max' }),
      )
      .map(([creates, ops]): Op[] => [...creates, ...ops]);

    it('agrees on every response status and resulting job for 100 random sequences of up to 15 steps', async () => {
      await fc.assert(
        fc.asyncProperty(sequenceArb, (ops) => runSequence(ops)),
        { numRuns: 100 },
      );
    });
  });
});
