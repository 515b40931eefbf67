import { setTimeout as sleep } from 'node:timers/promises';
import {
  attemptsNotMatchingStarts,
  completionMismatches,
  CRASH_SCENARIO_SERVER_ENV,
  CRASH_SCENARIO_TIMING,
  CrashWorkerPool,
  describeExecutions,
  isStartLine,
  lastLineOf,
  notReExecuted,
  stopIfMidJob,
  reusedLeaseTokens,
  type CrashWorker,
  type StartLine,
  type StoppedMidJob,
  type WorkerLogLine,
} from './utils/crash-workers.js';
import { call, inParallel, listAllJobs, type JobJson } from './utils/http.js';
import { killAll } from './utils/server-process.js';
import { startTestApp, type TestApp } from './utils/test-app.js';

/**
 * SPEC §5: "A job whose worker dies is claimable again within LEASE_MS + REAPER_INTERVAL_MS", and
 * fencing (§4): a worker whose lease was lost can never overwrite the work of the one that
 * re-claimed the job. Worker PROCESSES (test/fixtures/crash-worker.mjs) drain a queue while the
 * test, every few hundred milliseconds, SIGKILLs one of them in the middle of a job, holding its
 * lease, and starts a replacement; after every two kills it freezes a worker (SIGSTOP) past its lease
 * instead and lets it resume, stale, later. The app runs in-process on the real clock with its reaper.
 *
 * What each worker saw is in a shared log file it appends to synchronously, so it survives the
 * kill: `start <job> <worker> <token>` after a claim, `finishing` just before the completion is
 * sent, `complete <job> <worker> <httpStatus>` with the server's answer (see the fixture).
 */

const JOBS = 300;
const WORKERS = 6;
const { leaseMs: LEASE_MS, reaperIntervalMs: REAPER_INTERVAL_MS } = CRASH_SCENARIO_TIMING;
/** Disruption goes on this long, while the queue is still far from drained (about 35 jobs/s). */
const DISRUPTION_MS = 4_000;
const DISRUPTION_GAP_MS = { min: 200, max: 400 };
/** After every KILLS_PER_FREEZE kills, the next disruption freezes a worker instead... */
const KILLS_PER_FREEZE = 2;
/** ...for twice the lease: the reaper has taken the job back by the time the worker resumes. */
const FREEZE_MS = 2 * LEASE_MS;
/** Everything, from the first create to the last success, must fit in this. */
const SCENARIO_DEADLINE_MS = 60_000;
/** Room for measuring the recovery of a killed worker's job (polling it, a loaded machine). */
const RECOVERY_SLACK_MS = 500;

/** A worker stopped while it held the lease of `jobId`, then killed or frozen. */
type Disruption = StoppedMidJob;

interface Recovery {
  kill: Disruption;
  /** From the SIGKILL until the job was seen no longer held by the dead worker. */
  afterKillMs: number;
  /** The same moment, from the expiry of the dead worker's lease (read right after the kill). */
  afterExpiryMs: number | null;
}

describe('crash recovery: worker processes killed or frozen mid-job (real clock, real reaper)', () => {
  let t: TestApp;
  let workers: CrashWorkerPool;
  const kills: Disruption[] = [];
  const recoveries: Promise<Recovery>[] = [];
  let recovered: Recovery[];
  /** Workers SIGSTOPped mid-job for FREEZE_MS, then resumed with a lease that is no longer theirs. */
  const freezes: Disruption[] = [];
  /**
   * The leases frozen workers held. A resumed worker is not disrupted again before it has dealt
   * with that lease (its last line is still that `start`), so its reaction is always in the log.
   */
  const frozenLeases = new Set<string>();
  const thaws: Promise<void>[] = [];
  let skippedTicks = 0;
  let jobIds: number[];
  let jobs: JobJson[];
  let log: WorkerLogLine[];
  let elapsedMs: number;

  function startWorker(): void {
    workers.start(t.baseUrl, {});
  }

  /**
   * SIGSTOPs a random worker that is in the middle of a job, holding a lease that was never frozen,
   * and returns it stopped (see stopIfMidJob). Returns undefined if no worker was mid-job at that moment.
   */
  async function stopOneMidJob(): Promise<{ worker: CrashWorker; disruption: Disruption } | undefined> {
    const eligible = (line: StartLine): boolean => !frozenLeases.has(line.detail);
    const log = workers.readLog();
    const candidates = workers.shuffled().filter((worker) => {
      const last = lastLineOf(log, worker.id);
      return isStartLine(last) && eligible(last);
    });
    for (const worker of candidates) {
      const disruption = await stopIfMidJob(worker, workers.logPath, eligible);
      if (disruption) return { worker, disruption };
    }
    return undefined;
  }

  /** The worker dies holding its lease; only the reaper can give the job to someone else. */
  async function killMidJob(): Promise<boolean> {
    const stopped = await stopOneMidJob();
    if (!stopped) return false;
    stopped.worker.process.child.kill('SIGKILL');
    await stopped.worker.process.exited;
    kills.push(stopped.disruption);
    recoveries.push(watchRecovery(stopped.disruption, performance.now()));
    startWorker();
    return true;
  }

  /** Polls the dead worker's job until the reaper has taken it back (queued, or claimed by another). */
  async function watchRecovery(kill: Disruption, killedAt: number): Promise<Recovery> {
    const heldByDead = (job: JobJson): boolean => job.status === 'running' && job.lockedBy === kill.workerId;
    const atKill = (await call<JobJson>(t.baseUrl, 'GET', `/jobs/${kill.jobId}`)).body;
    // The server runs in this process: Date.now() is its clock, so the expiry compares exactly.
    const expiresAt = heldByDead(atKill) ? Date.parse(String(atKill.leaseExpiresAt)) : null;
    for (let job = atKill; heldByDead(job);) {
      if (performance.now() - killedAt > 10_000) throw new Error(`job ${kill.jobId} still held 10 s after the kill`);
      await sleep(20);
      job = (await call<JobJson>(t.baseUrl, 'GET', `/jobs/${kill.jobId}`)).body;
    }
    return {
      kill,
      afterKillMs: performance.now() - killedAt,
      afterExpiryMs: expiresAt === null ? null : Date.now() - expiresAt,
    };
  }

  /** The worker pauses (a long GC, a partition) past its lease, then carries on as if nothing happened. */
  async function freezeMidJob(): Promise<boolean> {
    const stopped = await stopOneMidJob();
    if (!stopped) return false;
    const { worker, disruption } = stopped;
    frozenLeases.add(disruption.leaseToken);
    freezes.push(disruption);
    thaws.push(sleep(FREEZE_MS).then(() => void worker.process.child.kill('SIGCONT')));
    return true;
  }

  beforeAll(async () => {
    const startedAt = performance.now();
    const deadline = startedAt + SCENARIO_DEADLINE_MS;
    t = await startTestApp({ env: CRASH_SCENARIO_SERVER_ENV });
    workers = new CrashWorkerPool('orchestrator-crash-');

    // maxAttempts 100: the kills cannot exhaust a job, so every job must end `succeeded`.
    const created = await inParallel(JOBS, 16, (i) =>
      call<JobJson>(t.baseUrl, 'POST', '/jobs', { name: `crash-${i}`, payload: { i }, maxAttempts: 100 }),
    );
    expect(created.filter((res) => res.status !== 201).map((res) => res.text)).toEqual([]);
    jobIds = created.map((res) => res.body.id);

    for (let i = 0; i < WORKERS; i++) startWorker();
    const disruptionEnd = performance.now() + DISRUPTION_MS;
    while (performance.now() < disruptionEnd) {
      await sleep(DISRUPTION_GAP_MS.min + Math.random() * (DISRUPTION_GAP_MS.max - DISRUPTION_GAP_MS.min));
      const freezeNext = kills.length >= KILLS_PER_FREEZE * (freezes.length + 1);
      const disrupted = freezeNext ? await freezeMidJob() : await killMidJob();
      if (!disrupted) skippedTicks++;
    }
    await Promise.all(thaws);
    recovered = await Promise.all(recoveries);

    // The survivors drain the queue, including the jobs the reaper takes back from killed workers.
    await workers.untilAllSucceeded(t.baseUrl, deadline, SCENARIO_DEADLINE_MS);
    elapsedMs = performance.now() - startedAt;

    // SIGTERM lets a worker finish the step it is in, so no answer is left out of the log.
    const exits = await workers.terminateAll();
    expect(exits).toEqual(exits.map(() => ({ code: 0, signal: null })));
    jobs = await listAllJobs(t.baseUrl);
    log = workers.readLog();

    console.log(
      [
        `crash recovery: ${JOBS} jobs, ${workers.started} worker processes, ${kills.length} SIGKILLs, ` +
          `${freezes.length} freezes of ${FREEZE_MS} ms (${skippedTicks} ticks found no worker mid-job), ` +
          `${(elapsedMs / 1000).toFixed(1)} s`,
        describeExecutions(jobIds, log),
        `jobs of killed workers taken back ${Math.round(Math.min(...recovered.map((r) => r.afterKillMs)))}..` +
          `${Math.round(Math.max(...recovered.map((r) => r.afterKillMs)))} ms after the kill, ` +
          `at most ${Math.max(...recovered.map((r) => r.afterExpiryMs ?? 0))} ms after the lease expired`,
        `completions answered 409: ${log.filter((l) => l.kind === 'complete' && l.detail === '409').length}, ` +
          `leases lost on heartbeat: ${log.filter((l) => l.kind === 'lost').length}`,
      ].join('\n'),
    );
  }, SCENARIO_DEADLINE_MS + 30_000);

  afterAll(async () => {
    await killAll();
    await t?.close();
    workers?.dispose();
  });

  it('killed workers mid-job, and every job they held was executed again by another worker', () => {
    expect(kills.length).toBeGreaterThan(0);
    // The victim never completed it, and someone else started it after the kill.
    expect(notReExecuted(kills, log)).toEqual([]);
    const starts = log.filter((line) => line.kind === 'start');
    const executedMoreThanOnce = jobIds.filter((id) => starts.filter((l) => l.jobId === id).length > 1);
    expect(executedMoreThanOnce.length).toBeGreaterThan(0);
  });

  it('takes back the job of a killed worker after its lease expires, within LEASE_MS + REAPER_INTERVAL_MS', () => {
    // Never before the dead worker's lease ran out (it could have been alive and about to finish)...
    expect(recovered.filter((r) => r.afterExpiryMs !== null && r.afterExpiryMs < 0)).toEqual([]);
    // ...and no later than SPEC §5 promises, give or take the measurement.
    const late = recovered.filter((r) => r.afterKillMs > LEASE_MS + REAPER_INTERVAL_MS + RECOVERY_SLACK_MS);
    expect(late).toEqual([]);
  });

  it('fenced off workers that resumed after their lease was taken back: 409, never an overwrite', () => {
    expect(freezes.length).toBeGreaterThan(0);
    const outcomes = freezes.map((freeze) => {
      const started = log.findIndex((l) => l.kind === 'start' && l.detail === freeze.leaseToken);
      // What the resumed worker did next with that lease: a heartbeat that found it lost, or a completion.
      const next = log
        .slice(started + 1)
        .find((l) => l.workerId === freeze.workerId && (l.kind === 'lost' || l.kind === 'complete'));
      const reExecuted = log.some(
        (l) => l.kind === 'start' && l.jobId === freeze.jobId && l.detail !== freeze.leaseToken,
      );
      return { ...freeze, outcome: next ? `${next.kind} ${next.detail ?? ''}`.trim() : 'none', reExecuted };
    });
    expect(outcomes.filter((o) => !['lost', 'complete 409'].includes(o.outcome) || !o.reExecuted)).toEqual([]);
  });

  it('ends with every job succeeded', () => {
    expect(jobs.map((job) => job.id).sort((a, b) => a - b)).toEqual([...jobIds].sort((a, b) => a - b));
    expect(jobs.filter((job) => job.status !== 'succeeded')).toEqual([]);
  });

  it('accepts exactly one completion per job, from the worker recorded as result.workerId and lockedBy', () => {
    const completes = log.filter((line) => line.kind === 'complete');
    // A worker whose lease was lost may still try to complete: the only other answer is 409.
    expect(completes.filter((line) => line.detail !== '200' && line.detail !== '409')).toEqual([]);
    expect(completionMismatches(jobs, log)).toEqual([]);
  });

  it('counts one claim (attempt) per execution the workers saw, each under its own lease token', () => {
    expect(attemptsNotMatchingStarts(jobs, log)).toEqual([]);
    expect(reusedLeaseTokens(log)).toEqual([]);
  });

  it('saw no failed request, no unexpected answer and no crash in any worker', () => {
    expect(log.filter((line) => line.kind === 'error')).toEqual([]);
    expect(workers.unexpectedExits).toEqual([]);
  });
});
