import { existsSync } from 'node:fs';
import {
  assertServerBuilt,
  freePort,
  killAll,
  serverEnv,
  spawnServer,
  waitForHealth,
  type Exit,
  type NodeProcess,
} from './utils/server-process.js';
import { createTestDatabase, TEST_DATABASE, type TestDatabase } from './utils/test-database.js';

/**
 * SPEC §5: "Every job acknowledged with 201/200 is stored durably: it survives kill -9 of the
 * server", and §4: "A server restart keeps leases as they are". The built server runs as a child
 * process on the suite's database (a SQLite file, or a PostgreSQL schema); it is SIGKILLed while
 * creates are in flight, restarted on the same database, and what it reads back is compared with
 * what it acknowledged before dying.
 */

const LOOPS = 8;
/** Kill once this many creates were acknowledged, or after KILL_AFTER_MS, whichever comes first. */
const KILL_AFTER_ACKS = 400;
const KILL_AFTER_MS = 1_500;
const REQUEST_TIMEOUT_MS = 5_000;
const HOUR_MS = 3_600_000;

interface RunningServer {
  process: NodeProcess;
  baseUrl: string;
}

interface JobBody {
  id: number;
  name: string;
  status: string;
  payload: unknown;
  attempts: number;
  lockedAt: string | null;
  lockedBy: string | null;
  leaseExpiresAt: string | null;
  leaseToken?: string;
}

/** Starts the built server on `database` and resolves once GET /health answers 200. */
async function startServer(label: string, database: Record<string, string>): Promise<RunningServer> {
  const port = await freePort();
  const env = serverEnv({ PORT: String(port), HOST: '127.0.0.1', ...database });
  const server = { process: spawnServer(env, { label }), baseUrl: `http://127.0.0.1:${port}` };
  await waitForHealth(server.process, server.baseUrl);
  return server;
}

/** Runs `assertions`, adding the servers' output to the failure message if they fail. */
async function withServerOutput(servers: RunningServer[], assertions: () => Promise<void>): Promise<void> {
  try {
    await assertions();
  } catch (error) {
    if (error instanceof Error) error.message += `\n\n${servers.map((s) => s.process.output()).join('\n')}`;
    throw error;
  }
}

async function call(server: RunningServer, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${server.baseUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
}

/** Every job, following nextCursor from page to page until it is null. */
async function listAllJobs(server: RunningServer, limit: number): Promise<JobBody[]> {
  const jobs: JobBody[] = [];
  let cursor: string | null = null;
  // Bounded: far more pages than the few thousand jobs this test can create.
  for (let page = 0; page < 100; page++) {
    const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const response = await call(server, 'GET', `/jobs?limit=${limit}${query}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { items: JobBody[]; nextCursor: string | null };
    jobs.push(...body.items);
    cursor = body.nextCursor;
    if (cursor === null) return jobs;
  }
  throw new Error('GET /jobs kept returning a nextCursor after 100 pages');
}

function payloadFor(loop: number, n: number): unknown {
  return { loop, n, text: `ünïcødé ✓ ${loop}/${n}`, values: [n, n * 2, null, true], nested: { deep: [{ n }] } };
}

interface Acknowledged {
  id: number;
  name: string;
  payload: unknown;
}

/**
 * LOOPS workers each create jobs one after another (`job-<loop>-<n>`) until the server dies. The
 * server is killed from inside the stream, so the other loops' requests are in flight at that moment.
 */
async function createUntilKilled(server: RunningServer): Promise<{
  acknowledged: Acknowledged[];
  /** Per loop, how many creates were sent (acknowledged or not). */
  sent: number[];
  inFlightAtKill: number;
  unexpected: string[];
  exit: Exit;
}> {
  const acknowledged: Acknowledged[] = [];
  const sent = new Array<number>(LOOPS).fill(0);
  const unexpected: string[] = [];
  let inFlight = 0;
  let inFlightAtKill = -1;
  let killed = false;
  const startedAt = Date.now();

  const kill = (): void => {
    if (killed) return;
    killed = true;
    inFlightAtKill = inFlight;
    server.process.child.kill('SIGKILL');
  };
  // Backstop in case the server is slower than expected: kill after a fixed time anyway.
  const timer = setTimeout(kill, KILL_AFTER_MS);

  const loop = async (index: number): Promise<void> => {
    // Bounded: the server is killed after at most KILL_AFTER_MS, which ends every loop.
    for (let n = 0; n < 100_000; n++) {
      const name = `job-${index}-${n}`;
      const payload = payloadFor(index, n);
      sent[index] = n + 1;
      inFlight++;
      let response: Response;
      let body: JobBody;
      try {
        response = await call(server, 'POST', '/jobs', { name, payload });
        body = (await response.json()) as JobBody;
      } catch (error) {
        // The connection died with the server: this create may or may not have been stored.
        if (!killed) unexpected.push(`${name}: ${String(error)}`);
        return;
      } finally {
        inFlight--;
      }
      if (response.status !== 201) {
        unexpected.push(`${name}: HTTP ${response.status} ${JSON.stringify(body)}`);
        return;
      }
      acknowledged.push({ id: body.id, name, payload });
      if (acknowledged.length >= KILL_AFTER_ACKS || Date.now() - startedAt >= KILL_AFTER_MS) kill();
      if (killed) return;
    }
  };

  await Promise.all(Array.from({ length: LOOPS }, (_, index) => loop(index)));
  clearTimeout(timer);
  kill();
  return { acknowledged, sent, inFlightAtKill, unexpected, exit: await server.process.exited };
}

describe(`kill -9 of the built server while jobs are being created (${TEST_DATABASE})`, () => {
  let database: TestDatabase;
  const servers: RunningServer[] = [];
  let restarted: RunningServer;
  let stream: Awaited<ReturnType<typeof createUntilKilled>>;
  let claimedBeforeCrash: JobBody;
  let queuedBeforeCrash: JobBody;
  /** SQLite only: the write-ahead log file that kill -9 leaves behind. */
  let walLeftByCrash: boolean | undefined;

  beforeAll(async () => {
    assertServerBuilt();
    database = await createTestDatabase();

    const first = await startServer('server before kill -9', database.env);
    servers.push(first);
    await withServerOutput([first], async () => {
      // A job that a worker holds under a long lease when the server dies (the reaper must not
      // touch it after the restart), and one that waits in the queue.
      const created = await call(first, 'POST', '/jobs', { name: 'claimed-before-crash', payload: { gpu: 1 } });
      expect(created.status).toBe(201);
      const claimed = await call(first, 'POST', '/jobs/claim', { workerId: 'gpu-node-7', leaseMs: HOUR_MS });
      expect(claimed.status).toBe(200);
      claimedBeforeCrash = (await claimed.json()) as JobBody;
      const queued = await call(first, 'POST', '/jobs', { name: 'queued-before-crash', payload: null, priority: -5 });
      expect(queued.status).toBe(201);
      queuedBeforeCrash = (await queued.json()) as JobBody;

      stream = await createUntilKilled(first);
    });
    // kill -9 leaves the write-ahead log behind (a clean close removes it): the restart below really
    // has to recover from a crash.
    const sqlitePath = database.env.DATABASE_URL.startsWith('sqlite:') ? database.env.DATABASE_URL.slice(7) : null;
    walLeftByCrash = sqlitePath === null ? undefined : existsSync(`${sqlitePath}-wal`);

    restarted = await startServer('server after restart', database.env);
    servers.push(restarted);
  }, 60_000);

  afterAll(async () => {
    await killAll();
    await database?.drop();
  });

  it('kills the server with SIGKILL while creates are in flight, after a stream of acknowledged ones', async () => {
    await withServerOutput(servers, async () => {
      expect(stream.unexpected).toEqual([]);
      expect(stream.exit).toEqual({ code: null, signal: 'SIGKILL' });
      expect(stream.inFlightAtKill).toBeGreaterThan(0);
      expect(stream.acknowledged.length).toBeGreaterThanOrEqual(100);
      expect(walLeftByCrash).toBe(TEST_DATABASE === 'sqlite' ? true : undefined);
    });
  });

  it('keeps every acknowledged job with its name, payload and queued status, and invents none', async () => {
    await withServerOutput(servers, async () => {
      const jobs = await listAllJobs(restarted, 500);
      const byId = new Map(jobs.map((job) => [job.id, job]));
      // Smaller pages walk the same recovered table through many cursors: nothing repeated or skipped.
      expect(await listAllJobs(restarted, 37)).toEqual(jobs);

      // ids are unique and the list is in ascending id order.
      expect(byId.size).toBe(jobs.length);
      expect(jobs.map((job) => job.id)).toEqual([...byId.keys()].sort((a, b) => a - b));

      // Every acknowledged create is there exactly as acknowledged.
      const missingOrChanged = stream.acknowledged.filter((ack) => {
        const job = byId.get(ack.id);
        return (
          !job ||
          job.name !== ack.name ||
          job.status !== 'queued' ||
          JSON.stringify(job.payload) !== JSON.stringify(ack.payload)
        );
      });
      expect(missingOrChanged).toEqual([]);
      for (const ack of stream.acknowledged.slice(0, 20)) {
        expect(byId.get(ack.id)).toMatchObject({ name: ack.name, status: 'queued', payload: ack.payload, attempts: 0 });
      }

      // Besides the two jobs made before the stream, only creates that were sent exist: each loop
      // has its acknowledged ones plus at most the one that was in flight when the server died.
      const streamed = jobs.filter((job) => job.id !== claimedBeforeCrash.id && job.id !== queuedBeforeCrash.id);
      expect(streamed.length).toBeGreaterThanOrEqual(stream.acknowledged.length);
      expect(streamed.length).toBeLessThanOrEqual(stream.acknowledged.length + LOOPS);
      const acknowledgedNames = new Set(stream.acknowledged.map((ack) => ack.name));
      const sentButUnacknowledged = streamed.filter((job) => !acknowledgedNames.has(job.name));
      for (const job of sentButUnacknowledged) {
        const match = /^job-(\d+)-(\d+)$/.exec(job.name);
        expect(match).not.toBeNull();
        const [loop, n] = [Number(match?.[1]), Number(match?.[2])];
        // Only the last request of its loop can be stored without an acknowledgement.
        expect(n).toBe(stream.sent[loop] - 1);
        expect(job).toMatchObject({ status: 'queued', payload: payloadFor(loop, n) });
      }
      expect(new Set(streamed.map((job) => job.name)).size).toBe(streamed.length);
      expect(byId.get(queuedBeforeCrash.id)).toMatchObject({
        name: 'queued-before-crash',
        status: 'queued',
        payload: null,
      });
    });
  });

  it('keeps a claimed job running under the same lease, which its worker can still complete', async () => {
    await withServerOutput(servers, async () => {
      const read = await call(restarted, 'GET', `/jobs/${claimedBeforeCrash.id}`);
      expect(read.status).toBe(200);
      const job = (await read.json()) as JobBody;
      expect(job).toMatchObject({
        name: 'claimed-before-crash',
        payload: { gpu: 1 },
        status: 'running',
        attempts: 1,
        lockedBy: 'gpu-node-7',
        lockedAt: claimedBeforeCrash.lockedAt,
        leaseExpiresAt: claimedBeforeCrash.leaseExpiresAt,
      });
      expect(job.leaseToken).toBeUndefined();

      // The restart did not hand the job out again: the next claim gets another job.
      const next = await call(restarted, 'POST', '/jobs/claim', { workerId: 'gpu-node-8', leaseMs: HOUR_MS });
      expect(next.status).toBe(200);
      expect(((await next.json()) as JobBody).id).not.toBe(claimedBeforeCrash.id);

      // The lease token issued before the crash is still the job's lease; another one is fenced off.
      const forged = await call(restarted, 'PATCH', `/jobs/${claimedBeforeCrash.id}/status`, {
        status: 'succeeded',
        leaseToken: 'not-the-lease-token',
      });
      expect(forged.status).toBe(409);
      const finished = await call(restarted, 'PATCH', `/jobs/${claimedBeforeCrash.id}/status`, {
        status: 'succeeded',
        leaseToken: claimedBeforeCrash.leaseToken,
        result: { accuracy: 0.9 },
      });
      expect(finished.status).toBe(200);
      expect(await finished.json()).toMatchObject({
        status: 'succeeded',
        result: { accuracy: 0.9 },
        lockedBy: 'gpu-node-7',
      });
    });
  });
});
