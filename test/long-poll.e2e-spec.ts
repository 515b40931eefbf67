import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Transactor } from '../src/database/transactions.js';
import { ClaimWaiters } from '../src/jobs/claim-waiters.js';
import type { JobJson } from './utils/http.js';
import {
  assertServerBuilt,
  freePort,
  killAll,
  serverEnv,
  spawnServer,
  waitForHealth,
  type NodeProcess,
} from './utils/server-process.js';
import { startTestApp, type TestApp } from './utils/test-app.js';
import { createTestDatabase, TEST_DATABASE, type TestDatabase } from './utils/test-database.js';

/**
 * SPEC §4, `POST /jobs/claim` and `/jobs/claim/batch` with `waitMs`: a claim that finds nothing waits
 * (up to 30000 ms) and returns as soon as a job becomes claimable in its queues — created, come due
 * after a delay or a retry backoff, or re-queued by the reaper — else 204 when the wait runs out.
 * Waiting costs no database work: the app hears of new jobs from its ready signal (in-process on
 * SQLite, LISTEN/NOTIFY on PostgreSQL, so across server instances) and wakes only as many waiters as
 * jobs arrived. Everything runs on the real clock; times are read with Date.now() on this machine,
 * which is also the servers' clock, so they compare with the runAt / lockedAt the servers report.
 */

/** How late a woken claim may answer after its job became claimable: ~100 ms, plus CI jitter. */
const WAKE_SLACK_MS = 150;
/** Upper bound on any single fetch of this file (the longest waitMs sent is 30000, to a queue holding a job). */
const REQUEST_TIMEOUT_MS = 35_000;

interface Answer<T = JobJson> {
  status: number;
  body: T;
  text: string;
  /** Date.now() once the whole response had been read. */
  at: number;
}

/** One HTTP request over fetch, timed; `signal` lets a test hang up on it. */
async function send<T = JobJson>(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  signal: AbortSignal = AbortSignal.timeout(REQUEST_TIMEOUT_MS),
): Promise<Answer<T>> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  const text = await res.text();
  return { status: res.status, text, body: (text ? JSON.parse(text) : null) as T, at: Date.now() };
}

/** Polls `condition` every 5 ms; throws if it does not hold within `ms`. */
async function waitUntil(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
}

const waitingClaims = (t: TestApp): number => t.app.get(ClaimWaiters).size;
const statementsRun = (t: TestApp): number => t.app.get(Transactor).statements.count;

let queueSerial = 0;
/** A queue no other test uses, so jobs and waiters of different tests never meet. */
const freshQueue = (label: string): string => `${label}-${++queueSerial}`;

/** A claim on its own socket of `agent`: the test owns the thousand sockets and can drop any of them. */
interface OpenClaim {
  workerId: string;
  /** Set once the response has been read (status 0: the request was destroyed). */
  answer: { status: number; text: string; at: number } | undefined;
  done: Promise<void>;
  hangUp(): void;
}

function openClaim(
  agent: http.Agent,
  baseUrl: string,
  body: { workerId: string } & Record<string, unknown>,
): OpenClaim {
  const payload = JSON.stringify(body);
  const req = http.request(new URL('/jobs/claim', baseUrl), {
    method: 'POST',
    agent,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
  });
  const claim: OpenClaim = {
    workerId: body.workerId,
    answer: undefined,
    done: Promise.resolve(),
    hangUp: () => req.destroy(),
  };
  claim.done = new Promise<void>((resolve) => {
    const settle = (status: number, text: string) => {
      claim.answer ??= { status, text, at: Date.now() };
      resolve();
    };
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => settle(res.statusCode ?? 0, text));
      res.on('error', (error) => settle(0, error.message));
    });
    req.on('error', (error) => settle(0, error.message));
    req.on('close', () => settle(0, 'closed'));
  });
  req.end(payload);
  return claim;
}

/**
 * Resolves once no statement has run for `quietMs`: a claim registers as a waiter before its first
 * claim attempt, so `ClaimWaiters.size` counts a claim as waiting while its query may still run.
 */
async function untilQuiet(t: TestApp, quietMs: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let last = statementsRun(t);
  let lastChange = Date.now();
  while (Date.now() - lastChange < quietMs) {
    if (Date.now() > deadline) throw new Error(`statements still running after ${ms} ms`);
    await sleep(10);
    if (statementsRun(t) !== last) [last, lastChange] = [statementsRun(t), Date.now()];
  }
}

/** Statements per second the app runs over `ms`, doing nothing but what it does on its own. */
async function statementRate(t: TestApp, ms: number): Promise<{ perSecond: number; statements: number }> {
  const before = statementsRun(t);
  const started = Date.now();
  await sleep(ms);
  const statements = statementsRun(t) - before;
  return { statements, perSecond: statements / ((Date.now() - started) / 1000) };
}

describe(`long-poll claims on one instance (${TEST_DATABASE})`, () => {
  let t: TestApp;

  beforeAll(async () => {
    // The reaper's once-a-second pass is the only statement an idle app runs.
    t = await startTestApp({ env: { REAPER_INTERVAL_MS: '1000' } });
  });
  afterAll(() => t?.close());
  afterEach(() => waitUntil(() => waitingClaims(t) === 0, 5_000, 'every waiting claim of the test is gone'));

  it('hands a waiting claim the job created 500 ms later, within 150 ms of its creation', async () => {
    const queue = freshQueue('wake');
    const sent = Date.now();
    const claim = send(t.baseUrl, 'POST', '/jobs/claim', { workerId: 'patient', queues: [queue], waitMs: 5_000 });
    await waitUntil(() => waitingClaims(t) === 1, 2_000, 'the claim waits');
    await sleep(500);
    const created = await send(t.baseUrl, 'POST', '/jobs', { name: 'late', queue });
    expect(created.status).toBe(201);
    const claimed = await claim;

    expect(claimed.status).toBe(200);
    expect(claimed.body).toMatchObject({ id: created.body.id, status: 'running', lockedBy: 'patient', attempts: 1 });
    expect(claimed.body.leaseToken).toEqual(expect.any(String));
    expect(claimed.at - sent).toBeGreaterThanOrEqual(500);
    const latency = claimed.at - created.at;
    expect(latency).toBeLessThan(WAKE_SLACK_MS);
    const serverSide = Date.parse(claimed.body.lockedAt as string) - Date.parse(created.body.createdAt as string);
    console.log(
      `long-poll (${TEST_DATABASE}): POST /jobs/claim answered ${latency} ms after the create was acknowledged ` +
        `(lockedAt - createdAt = ${serverSide} ms)`,
    );
  });

  it('hands a waiting batch claim the jobs of a batch created 500 ms later, within 150 ms', async () => {
    const queue = freshQueue('wake-batch');
    const sent = Date.now();
    const claim = send<{ jobs: JobJson[] }>(t.baseUrl, 'POST', '/jobs/claim/batch', {
      limit: 5,
      workerId: 'patient-batch',
      queues: [queue],
      waitMs: 5_000,
    });
    await waitUntil(() => waitingClaims(t) === 1, 2_000, 'the batch claim waits');
    await sleep(500);
    const created = await send<{ jobs: JobJson[] }>(t.baseUrl, 'POST', '/jobs/batch', {
      jobs: [1, 2, 3].map((n) => ({ name: `late-${n}`, queue })),
    });
    expect(created.status).toBe(201);
    const claimed = await claim;

    expect(claimed.status).toBe(200);
    // The batch committed at once, so the one wake-up finds all three.
    expect(claimed.body.jobs.map((job) => job.id)).toEqual(created.body.jobs.map((job) => job.id));
    for (const job of claimed.body.jobs) {
      expect(job).toMatchObject({ status: 'running', lockedBy: 'patient-batch', leaseToken: expect.any(String) });
    }
    expect(claimed.at - sent).toBeGreaterThanOrEqual(500);
    const latency = claimed.at - created.at;
    expect(latency).toBeLessThan(WAKE_SLACK_MS);
    console.log(
      `long-poll (${TEST_DATABASE}): POST /jobs/claim/batch answered ${latency} ms after the batch was acknowledged`,
    );
  });

  it('answers 204 with an empty body once waitMs runs out, not before', async () => {
    const queue = freshQueue('empty');
    const sent = Date.now();
    const [single, batch] = await Promise.all([
      send(t.baseUrl, 'POST', '/jobs/claim', { queues: [queue], waitMs: 700 }),
      send(t.baseUrl, 'POST', '/jobs/claim/batch', { limit: 10, queues: [queue], waitMs: 700 }),
    ]);
    for (const answer of [single, batch]) {
      expect(answer.status).toBe(204);
      expect(answer.text).toBe('');
      expect(answer.at - sent).toBeGreaterThanOrEqual(700);
      expect(answer.at - sent).toBeLessThan(1_000);
    }
    console.log(
      `long-poll (${TEST_DATABASE}): waitMs 700 on an empty queue answered 204 after ` +
        `${single.at - sent} ms (claim) and ${batch.at - sent} ms (batch)`,
    );
  });

  it('accepts waitMs from 0 to 30000 and refuses 30001, -1, "100" and 1.5 with 400', async () => {
    const queue = freshQueue('bounds');
    // Nothing to wait for with waitMs 0: 204 at once.
    const immediate = await send(t.baseUrl, 'POST', '/jobs/claim', { queues: [queue], waitMs: 0 });
    expect(immediate.status).toBe(204);

    // 30000 is accepted; a job is already there, so the claim does not actually wait.
    const [first, second] = await Promise.all(
      [1, 2].map(async (n) => (await send(t.baseUrl, 'POST', '/jobs', { name: `ready-${n}`, queue })).body),
    );
    const longest = await send(t.baseUrl, 'POST', '/jobs/claim', { queues: [queue], waitMs: 30_000 });
    expect(longest.status).toBe(200);
    const longestBatch = await send<{ jobs: JobJson[] }>(t.baseUrl, 'POST', '/jobs/claim/batch', {
      limit: 1,
      queues: [queue],
      waitMs: 30_000,
    });
    expect(longestBatch.status).toBe(200);
    expect(new Set([longest.body.id, longestBatch.body.jobs[0].id])).toEqual(new Set([first.id, second.id]));

    for (const waitMs of [30_001, -1, '100', 1.5]) {
      for (const [path, extra] of [
        ['/jobs/claim', {}],
        ['/jobs/claim/batch', { limit: 1 }],
      ] as const) {
        const refused = await send<{ statusCode: number; message: unknown }>(t.baseUrl, 'POST', path, {
          ...extra,
          queues: [queue],
          waitMs,
        });
        expect({ path, waitMs, status: refused.status }).toEqual({ path, waitMs, status: 400 });
        expect(refused.body.statusCode).toBe(400);
        expect(JSON.stringify(refused.body.message)).toMatch(/waitMs/);
      }
    }
    expect(waitingClaims(t)).toBe(0);
  });

  it('wakes a waiting claim when a delayed job created during the wait comes due', async () => {
    const queue = freshQueue('delayed-later');
    const claim = send(t.baseUrl, 'POST', '/jobs/claim', { queues: [queue], waitMs: 5_000 });
    await waitUntil(() => waitingClaims(t) === 1, 2_000, 'the claim waits');
    const created = await send(t.baseUrl, 'POST', '/jobs', { name: 'delayed', queue, delayMs: 800 });
    expect(created.status).toBe(201);
    const runAt = Date.parse(created.body.runAt as string);
    const claimed = await claim;

    expect(claimed.status).toBe(200);
    expect(claimed.body.id).toBe(created.body.id);
    expect(claimed.at - created.at).toBeGreaterThanOrEqual(800 - 5);
    expect(claimed.at).toBeGreaterThanOrEqual(runAt);
    expect(Date.parse(claimed.body.lockedAt as string)).toBeGreaterThanOrEqual(runAt);
    expect(claimed.at - runAt).toBeLessThan(WAKE_SLACK_MS);
    console.log(
      `long-poll (${TEST_DATABASE}): delayed job created during the wait: claim answered ` +
        `${claimed.at - runAt} ms after its runAt (${claimed.at - created.at} ms after the create)`,
    );
  });

  it('wakes a claim at the runAt of a delayed job that existed before it started waiting', async () => {
    const queue = freshQueue('delayed-before');
    const created = await send(t.baseUrl, 'POST', '/jobs', { name: 'delayed', queue, delayMs: 800 });
    expect(created.status).toBe(201);
    const runAt = Date.parse(created.body.runAt as string);
    const sent = Date.now();
    const claimed = await send(t.baseUrl, 'POST', '/jobs/claim', { queues: [queue], waitMs: 5_000 });

    expect(claimed.status).toBe(200);
    expect(claimed.body.id).toBe(created.body.id);
    expect(claimed.at).toBeGreaterThanOrEqual(runAt);
    expect(Date.parse(claimed.body.lockedAt as string)).toBeGreaterThanOrEqual(runAt);
    expect(claimed.at - runAt).toBeLessThan(WAKE_SLACK_MS);
    console.log(
      `long-poll (${TEST_DATABASE}): delayed job created before the wait: claim answered ` +
        `${claimed.at - runAt} ms after its runAt (it waited ${claimed.at - sent} ms)`,
    );
  });

  it('does not hand a waiter on queue A a job created in queue B', async () => {
    const [queueA, queueB] = [freshQueue('a'), freshQueue('b')];
    const sent = Date.now();
    const patient = send(t.baseUrl, 'POST', '/jobs/claim', { workerId: 'on-a', queues: [queueA], waitMs: 5_000 });
    await waitUntil(() => waitingClaims(t) === 1, 2_000, 'the first claim waits');
    const impatient = send(t.baseUrl, 'POST', '/jobs/claim', { workerId: 'on-a-2', queues: [queueA], waitMs: 1_200 });
    await waitUntil(() => waitingClaims(t) === 2, 2_000, 'the second claim waits');

    await sleep(300);
    const jobB = await send(t.baseUrl, 'POST', '/jobs', { name: 'for-b', queue: queueB });
    await sleep(300);
    // Neither waiter on A took B's job, and both still wait.
    expect(waitingClaims(t)).toBe(2);
    const created = await send(t.baseUrl, 'POST', '/jobs', { name: 'for-a', queue: queueA });

    const [first, second] = await Promise.all([patient, impatient]);
    // One job in A: the longest-waiting claim gets it, the other waits on and runs out.
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ id: created.body.id, queue: queueA, lockedBy: 'on-a' });
    expect(first.at - created.at).toBeLessThan(WAKE_SLACK_MS);
    expect(second.status).toBe(204);
    expect(second.at - sent).toBeGreaterThanOrEqual(1_200);

    const stillQueued = await send(t.baseUrl, 'GET', `/jobs/${jobB.body.id}`);
    expect(stillQueued.body).toMatchObject({ status: 'queued', attempts: 0, lockedBy: null });
  });

  it('frees the waiter of a client that hangs up, and claims nothing for it', async () => {
    const queue = freshQueue('hang-up');
    const client = new AbortController();
    const claim = send(
      t.baseUrl,
      'POST',
      '/jobs/claim',
      { workerId: 'gone', queues: [queue], waitMs: 10_000 },
      client.signal,
    );
    const outcome = claim.then(
      () => 'answered',
      (error: Error) => error.name,
    );
    await waitUntil(() => waitingClaims(t) === 1, 2_000, 'the claim waits');
    await sleep(200);

    const statementsBefore = statementsRun(t);
    const hungUpAt = Date.now();
    client.abort();
    expect(await outcome).toBe('AbortError');
    await waitUntil(() => waitingClaims(t) === 0, 1_000, 'the waiter is freed');
    const freedMs = Date.now() - hungUpAt;
    expect(freedMs).toBeLessThan(200);
    const statementsAfterHangUp = statementsRun(t) - statementsBefore;

    const created = await send(t.baseUrl, 'POST', '/jobs', { name: 'after-hang-up', queue });
    await sleep(300);
    const job = await send(t.baseUrl, 'GET', `/jobs/${created.body.id}`);
    expect(job.body).toMatchObject({ status: 'queued', attempts: 0, lockedBy: null });
    // And it is there for the next claimer.
    const next = await send(t.baseUrl, 'POST', '/jobs/claim', { workerId: 'next', queues: [queue] });
    expect(next.body).toMatchObject({ id: created.body.id, lockedBy: 'next' });
    console.log(
      `long-poll (${TEST_DATABASE}): a hung-up claim's waiter was freed ${freedMs} ms after the client left ` +
        `(${statementsAfterHangUp} statement(s) run meanwhile)`,
    );
  });

  it('keeps 1,000 idle waiters at no database cost, and wakes exactly 3 of them for 3 new jobs', async () => {
    const queue = freshQueue('idle');
    // Long enough that the first waiters outlast opening all 1000 on a loaded 2-core machine.
    const WAIT_MS = 20_000;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1_000 });
    const claims: OpenClaim[] = [];
    /** Opens `count` more waiting claims, 100 at a time, until all of them wait. */
    const openWaiters = async (count: number) => {
      const target = waitingClaims(t) + count;
      while (waitingClaims(t) < target) {
        const chunk = Math.min(100, target - waitingClaims(t));
        for (let i = 0; i < chunk; i++) {
          claims.push(
            openClaim(agent, t.baseUrl, { workerId: `idle-${claims.length}`, queues: [queue], waitMs: WAIT_MS }),
          );
        }
        const expected = waitingClaims(t) + chunk;
        await waitUntil(() => waitingClaims(t) >= expected, 10_000, `${expected} claims wait`);
      }
      await untilQuiet(t, 150, 10_000);
    };
    const hangUpAll = async () => {
      for (const claim of claims) if (!claim.answer) claim.hangUp();
      await Promise.all(claims.map((claim) => claim.done));
    };
    try {
      // Baseline: 10 waiters.
      await openWaiters(10);
      expect(waitingClaims(t)).toBe(10);
      const few = await statementRate(t, 2_000);
      expect(claims.every((claim) => claim.answer === undefined)).toBe(true);
      await hangUpAll();
      await waitUntil(() => waitingClaims(t) === 0, 5_000, 'the 10 waiters are freed');
      claims.length = 0;

      const openingStarted = Date.now();
      const statementsBeforeOpening = statementsRun(t);
      await openWaiters(1_000);
      const openingMs = Date.now() - openingStarted;
      const openingStatements = statementsRun(t) - statementsBeforeOpening;
      expect(waitingClaims(t)).toBe(1_000);
      const many = await statementRate(t, 2_000);
      expect(waitingClaims(t)).toBe(1_000);
      expect(claims.filter((claim) => claim.answer !== undefined)).toEqual([]);

      // Only the reaper's pass once a second runs, whatever the number of waiters.
      expect(few.perSecond).toBeLessThanOrEqual(5);
      expect(many.perSecond).toBeLessThanOrEqual(5);
      expect(many.statements).toBeLessThanOrEqual(few.statements + 2);

      const statementsBeforeJobs = statementsRun(t);
      const created: Answer[] = [];
      for (let n = 0; n < 3; n++)
        created.push(await send(t.baseUrl, 'POST', '/jobs', { name: `for-idle-${n}`, queue }));
      const lastCreatedAt = created[2].at;
      await waitUntil(() => claims.filter((claim) => claim.answer).length >= 3, 2_000, '3 claims answer');
      await sleep(500);
      const wakeStatements = statementsRun(t) - statementsBeforeJobs;

      const answered = claims.filter((claim) => claim.answer !== undefined);
      expect(answered).toHaveLength(3);
      expect(waitingClaims(t)).toBe(997);
      const answers = answered.map((claim) => claim.answer as NonNullable<OpenClaim['answer']>);
      expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
      const claimedIds = answers.map((answer) => (JSON.parse(answer.text) as JobJson).id);
      expect(new Set(claimedIds)).toEqual(new Set(created.map((res) => res.body.id)));
      const slowest = Math.max(...answers.map((answer) => answer.at)) - lastCreatedAt;
      expect(slowest).toBeLessThan(WAKE_SLACK_MS);
      for (const claim of answered) {
        const job = JSON.parse((claim.answer as NonNullable<OpenClaim['answer']>).text) as JobJson;
        expect(job.lockedBy).toBe(claim.workerId);
      }
      // 3 creates and 3 claims: a handful of statements, not one per waiter.
      expect(wakeStatements).toBeLessThanOrEqual(20);

      const statementsBeforeHangUp = statementsRun(t);
      const hangUpStarted = Date.now();
      await hangUpAll();
      await waitUntil(() => waitingClaims(t) === 0, 10_000, 'the 997 waiters are freed');
      const hangUpMs = Date.now() - hangUpStarted;
      const hangUpStatements = statementsRun(t) - statementsBeforeHangUp;
      console.log(
        `long-poll (${TEST_DATABASE}): idle waiters cost ${few.perSecond.toFixed(1)} statements/s with 10 and ` +
          `${many.perSecond.toFixed(1)} statements/s with 1000 (${few.statements} vs ${many.statements} in 2 s); ` +
          `opening 1000 waiting claims took ${openingMs} ms and ${openingStatements} statements; 3 creates woke ` +
          `exactly 3 (last answer ${slowest} ms after the last create) for ${wakeStatements} statements; hanging ` +
          `up on the other 997 took ${hangUpMs} ms and ${hangUpStatements} statements`,
      );
    } finally {
      for (const claim of claims) if (!claim.answer) claim.hangUp();
      agent.destroy();
    }
  });
});

describe(`long-poll claims and re-queued jobs (${TEST_DATABASE})`, () => {
  const LEASE_MS = 1_000;
  const REAPER_INTERVAL_MS = 100;
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({
      env: {
        BACKOFF_BASE_MS: '300',
        BACKOFF_MAX_MS: '300',
        LEASE_MS: String(LEASE_MS),
        REAPER_INTERVAL_MS: String(REAPER_INTERVAL_MS),
      },
    });
  });
  afterAll(() => t?.close());

  it('wakes a waiter when a job that failed comes due again after its backoff', async () => {
    const queue = freshQueue('backoff');
    const created = await send(t.baseUrl, 'POST', '/jobs', { name: 'flaky', queue });
    const first = await send(t.baseUrl, 'POST', '/jobs/claim', { workerId: 'first', queues: [queue] });
    expect(first.body.id).toBe(created.body.id);

    const claim = send(t.baseUrl, 'POST', '/jobs/claim', { workerId: 'second', queues: [queue], waitMs: 5_000 });
    await waitUntil(() => waitingClaims(t) === 1, 2_000, 'the claim waits');
    const failed = await send(t.baseUrl, 'PATCH', `/jobs/${created.body.id}/status`, {
      status: 'failed',
      error: 'out of memory',
      leaseToken: first.body.leaseToken,
    });
    expect(failed.body).toMatchObject({ status: 'queued', attempts: 1 });
    const runAt = Date.parse(failed.body.runAt as string);
    const backoff = runAt - Date.parse(failed.body.updatedAt as string);
    // BACKOFF_BASE_MS 300 for the first retry, jittered within [150, 300].
    expect(backoff).toBeGreaterThanOrEqual(150);
    expect(backoff).toBeLessThanOrEqual(300);

    const claimed = await claim;
    expect(claimed.status).toBe(200);
    expect(claimed.body).toMatchObject({
      id: created.body.id,
      attempts: 2,
      lockedBy: 'second',
      error: 'out of memory',
    });
    expect(claimed.at).toBeGreaterThanOrEqual(runAt);
    expect(Date.parse(claimed.body.lockedAt as string)).toBeGreaterThanOrEqual(runAt);
    expect(claimed.at - runAt).toBeLessThan(WAKE_SLACK_MS);
    console.log(
      `long-poll (${TEST_DATABASE}): a job retried after a ${backoff} ms backoff was handed to the waiting claim ` +
        `${claimed.at - runAt} ms after its runAt`,
    );
  });

  it('wakes a waiter when the reaper re-queues a job whose lease expired', async () => {
    const queue = freshQueue('reaped');
    const created = await send(t.baseUrl, 'POST', '/jobs', { name: 'abandoned', queue });
    const first = await send(t.baseUrl, 'POST', '/jobs/claim', { workerId: 'dies', queues: [queue] });
    expect(first.body.id).toBe(created.body.id);
    const expiresAt = Date.parse(first.body.leaseExpiresAt as string);

    const claimed = await send(t.baseUrl, 'POST', '/jobs/claim', {
      workerId: 'rescuer',
      queues: [queue],
      waitMs: 5_000,
    });
    expect(claimed.status).toBe(200);
    expect(claimed.body).toMatchObject({ id: created.body.id, attempts: 2, lockedBy: 'rescuer' });
    expect(claimed.body.error).toMatch(/Lease expired/);
    expect(claimed.at).toBeGreaterThanOrEqual(expiresAt);
    // The reaper passes every REAPER_INTERVAL_MS; the wake-up follows its commit.
    expect(claimed.at - expiresAt).toBeLessThan(REAPER_INTERVAL_MS + WAKE_SLACK_MS);
    console.log(
      `long-poll (${TEST_DATABASE}): a job re-queued by the reaper was handed to the waiting claim ` +
        `${claimed.at - expiresAt} ms after its lease expired (LEASE_MS ${LEASE_MS}, REAPER_INTERVAL_MS ${REAPER_INTERVAL_MS})`,
    );
  });
});

describe(`shutdown with waiting claims (${TEST_DATABASE})`, () => {
  let t: TestApp | undefined;

  afterAll(() => t?.close());

  it('answers every waiting claim 204 at once when the app closes', async () => {
    t = await startTestApp();
    const app = t;
    const claims = [
      send(app.baseUrl, 'POST', '/jobs/claim', { waitMs: 10_000 }),
      send(app.baseUrl, 'POST', '/jobs/claim', { queues: ['elsewhere'], waitMs: 10_000 }),
      send(app.baseUrl, 'POST', '/jobs/claim/batch', { limit: 10, waitMs: 10_000 }),
    ];
    await waitUntil(() => waitingClaims(app) === 3, 2_000, 'the claims wait');
    await sleep(100);

    const closing = Date.now();
    t = undefined;
    const closed = app.close();
    const answers = await Promise.all(claims);
    await closed;
    const closedMs = Date.now() - closing;

    for (const answer of answers) {
      expect(answer.status).toBe(204);
      expect(answer.text).toBe('');
      expect(answer.at - closing).toBeLessThan(1_000);
    }
    // The close waits neither for the waits to run out (10 s) nor for the clients' keep-alive:
    // claims answered at shutdown carry `Connection: close`, so their connections end with them.
    expect(closedMs).toBeLessThan(1_500);
    console.log(
      `long-poll (${TEST_DATABASE}): app.close() answered 3 waiting claims 204 within ` +
        `${Math.max(...answers.map((answer) => answer.at)) - closing} ms and finished in ${closedMs} ms`,
    );
  });
});

/**
 * On PostgreSQL, several server processes share one database (SPEC §5): a job created through one
 * instance must wake a claim waiting on another (NOTIFY reaches every instance's LISTEN). SQLite
 * serves one process, so there the same scenario runs against one built server.
 */
const INSTANCES = TEST_DATABASE === 'postgres' ? 2 : 1;

describe(
  TEST_DATABASE === 'postgres'
    ? 'long-poll across two built server processes on one PostgreSQL schema'
    : 'long-poll on the built server process (sqlite: one process serves the database)',
  () => {
    let database: TestDatabase;
    const servers: { process: NodeProcess; baseUrl: string }[] = [];

    beforeAll(async () => {
      assertServerBuilt();
      database = await createTestDatabase();
      // Started together: the instances' migrations serialise on an advisory lock.
      await Promise.all(
        Array.from({ length: INSTANCES }, async (_, index) => {
          const port = await freePort();
          const env = serverEnv({ PORT: String(port), HOST: '127.0.0.1', ...database.env });
          const server = {
            process: spawnServer(env, { label: `server ${index + 1}` }),
            baseUrl: `http://127.0.0.1:${port}`,
          };
          servers[index] = server;
          await waitForHealth(server.process, server.baseUrl);
        }),
      );
    });
    afterAll(async () => {
      await killAll();
      await database?.drop();
    });

    /** Adds the servers' output to a failure. */
    async function withOutput(assertions: () => Promise<void>): Promise<void> {
      try {
        await assertions();
      } catch (error) {
        if (error instanceof Error) error.message += `\n\n${servers.map((s) => s.process.output()).join('\n')}`;
        throw error;
      }
    }

    it('hands a claim waiting on server 1 the job created on server 2 500 ms later, within 150 ms', () =>
      withOutput(async () => {
        const [waiting, creating] = [servers[0], servers[INSTANCES - 1]];
        const queue = freshQueue('cross');
        const sent = Date.now();
        const claim = send(waiting.baseUrl, 'POST', '/jobs/claim', {
          workerId: 'on-1',
          queues: [queue],
          waitMs: 5_000,
        });
        await sleep(500);
        const created = await send(creating.baseUrl, 'POST', '/jobs', { name: 'from-2', queue });
        expect(created.status).toBe(201);
        const claimed = await claim;

        expect(claimed.status).toBe(200);
        expect(claimed.body).toMatchObject({ id: created.body.id, lockedBy: 'on-1', leaseToken: expect.any(String) });
        expect(claimed.at - sent).toBeGreaterThanOrEqual(500);
        const latency = claimed.at - created.at;
        expect(latency).toBeLessThan(WAKE_SLACK_MS);
        // Both instances see the one job, held by the waiting claimer.
        const seen = await send(creating.baseUrl, 'GET', `/jobs/${created.body.id}`);
        expect(seen.body).toMatchObject({ status: 'running', lockedBy: 'on-1' });
        console.log(
          `long-poll (${TEST_DATABASE}, ${INSTANCES} built server(s)): the claim waiting on server 1 answered ` +
            `${latency} ms after server ${INSTANCES} acknowledged the create`,
        );
      }));

    it('wakes a claim waiting on server 1 when a delayed job created on server 2 comes due', () =>
      withOutput(async () => {
        const [waiting, creating] = [servers[0], servers[INSTANCES - 1]];
        const queue = freshQueue('cross-delayed');
        const claim = send(waiting.baseUrl, 'POST', '/jobs/claim', {
          workerId: 'on-1',
          queues: [queue],
          waitMs: 5_000,
        });
        await sleep(200);
        const created = await send(creating.baseUrl, 'POST', '/jobs', { name: 'delayed', queue, delayMs: 800 });
        const runAt = Date.parse(created.body.runAt as string);
        const claimed = await claim;

        expect(claimed.status).toBe(200);
        expect(claimed.body.id).toBe(created.body.id);
        expect(claimed.at).toBeGreaterThanOrEqual(runAt);
        expect(claimed.at - runAt).toBeLessThan(WAKE_SLACK_MS);
        console.log(
          `long-poll (${TEST_DATABASE}, ${INSTANCES} built server(s)): a delayed job created on server ` +
            `${INSTANCES} was handed to the claim waiting on server 1 ${claimed.at - runAt} ms after its runAt`,
        );
      }));
  },
);
