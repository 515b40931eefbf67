import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { call, inParallel, listAllJobs, type JobJson } from './utils/http.js';
import { exitWithin, killAll, spawnNode, type NodeProcess } from './utils/server-process.js';
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

const WORKER_SCRIPT = fileURLToPath(new URL('./fixtures/crash-worker.mjs', import.meta.url));
const JOBS = 300;
const WORKERS = 6;
const LEASE_MS = 1_000;
const REAPER_INTERVAL_MS = 100;
const HEARTBEAT_MS = 100;
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
/** Longer than LEASE_MS + REAPER_INTERVAL_MS, so survivors wait for the jobs of killed workers. */
const WORKER_IDLE_EXIT_MS = 5_000;

interface LogLine {
  kind: 'start' | 'finishing' | 'complete' | 'lost' | 'error';
  /** null on lines about no job (an error while claiming). */
  jobId: number | null;
  workerId: string;
  /** start: the lease token; complete: the HTTP status; error: what failed. */
  detail: string | undefined;
}

interface Worker {
  id: string;
  process: NodeProcess;
}

interface Disruption {
  workerId: string;
  /** The job the worker had started and not finished when it was stopped. */
  jobId: number;
  leaseToken: string;
}

interface Recovery {
  kill: Disruption;
  /** From the SIGKILL until the job was seen no longer held by the dead worker. */
  afterKillMs: number;
  /** The same moment, from the expiry of the dead worker's lease (read right after the kill). */
  afterExpiryMs: number | null;
}

function readLog(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  // A line being appended right now may be read in part: only whole lines count.
  const lines = readFileSync(path, 'utf8').split('\n').slice(0, -1);
  return lines.map((line) => {
    const [kind, jobId, workerId, detail] = line.split(' ');
    return { kind: kind as LogLine['kind'], jobId: jobId === '-' ? null : Number(jobId), workerId, detail };
  });
}

function lastLineOf(log: LogLine[], workerId: string): LogLine | undefined {
  return log.findLast((line) => line.workerId === workerId);
}

/** Resolves once the kernel reports the process stopped (Linux /proc), or after a short wait elsewhere. */
async function untilStopped(pid: number): Promise<void> {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return sleep(50);
  for (let i = 0; i < 200; i++) {
    // The state is the first field after the parenthesised command name: T (stopped) or t.
    const state = readFileSync(stat, 'utf8').replace(/^.*\) /s, '')[0];
    if (state === 'T' || state === 't') return;
    await sleep(5);
  }
  throw new Error(`process ${pid} did not stop within 1 s of SIGSTOP`);
}

/** How many times each value occurs, by value. */
function histogramBy<T extends string | number>(values: Iterable<T>): Record<T, number> {
  const counts = {} as Record<T, number>;
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

describe('crash recovery: worker processes killed or frozen mid-job (real clock, real reaper)', () => {
  let t: TestApp;
  let logDir: string;
  let logPath: string;
  const live = new Map<string, Worker>();
  let nextWorker = 1;
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
  /** Workers that ended other than by the test's SIGKILL or SIGTERM, with their output. */
  const unexpectedExits: string[] = [];
  let jobIds: number[];
  let jobs: JobJson[];
  let log: LogLine[];
  let elapsedMs: number;
  /** Jobs per status at the last check while draining, for the failure message. */
  let lastStatuses = '';

  function startWorker(): void {
    const id = `w${nextWorker++}`;
    const args = [
      `--base-url=${t.baseUrl}`,
      `--worker-id=${id}`,
      `--log=${logPath}`,
      `--lease-ms=${LEASE_MS}`,
      `--heartbeat-ms=${HEARTBEAT_MS}`,
      `--idle-exit-ms=${WORKER_IDLE_EXIT_MS}`,
    ];
    const worker = { id, process: spawnNode(WORKER_SCRIPT, args, { env: { ...process.env }, label: id }) };
    live.set(id, worker);
    void worker.process.exited.then((exit) => {
      live.delete(id);
      if (exit.code !== 0 && exit.signal !== 'SIGKILL') {
        unexpectedExits.push(`${id} ${JSON.stringify(exit)}\n${worker.process.output()}`);
      }
    });
  }

  /**
   * SIGSTOPs a random worker that is in the middle of a job, holding its lease, and returns it
   * stopped. It is checked after it stopped, so it cannot move on between the check and what the
   * caller does next: its last line is `start`, hence it has not sent its completion. Returns
   * undefined if no worker was mid-job at that moment.
   */
  async function stopOneMidJob(): Promise<{ worker: Worker; disruption: Disruption } | undefined> {
    const midJob = (line: LogLine | undefined): line is LogLine & { jobId: number; detail: string } =>
      line?.kind === 'start' && line.jobId !== null && line.detail !== undefined && !frozenLeases.has(line.detail);
    const candidates = [...live.values()]
      .filter((worker) => midJob(lastLineOf(readLog(logPath), worker.id)))
      .sort(() => Math.random() - 0.5);
    for (const worker of candidates) {
      const pid = worker.process.child.pid;
      if (pid === undefined || worker.process.exit()) continue;
      worker.process.child.kill('SIGSTOP');
      await untilStopped(pid);
      const last = lastLineOf(readLog(logPath), worker.id);
      if (midJob(last)) {
        return { worker, disruption: { workerId: worker.id, jobId: last.jobId, leaseToken: last.detail } };
      }
      worker.process.child.kill('SIGCONT');
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

  /** True once every job succeeded; throws if one cannot get there any more. */
  async function allSucceeded(): Promise<boolean> {
    const current = await listAllJobs(t.baseUrl);
    const stuck = current.filter((job) => job.status === 'failed' || job.status === 'cancelled');
    if (stuck.length > 0) throw new Error(`jobs ended other than succeeded: ${JSON.stringify(stuck.slice(0, 3))}`);
    lastStatuses = JSON.stringify(histogramBy(current.map((job) => job.status)));
    return current.every((job) => job.status === 'succeeded');
  }

  beforeAll(async () => {
    const startedAt = performance.now();
    const deadline = startedAt + SCENARIO_DEADLINE_MS;
    t = await startTestApp({ env: { LEASE_MS: String(LEASE_MS), REAPER_INTERVAL_MS: String(REAPER_INTERVAL_MS) } });
    logDir = mkdtempSync(join(tmpdir(), 'orchestrator-crash-'));
    logPath = join(logDir, 'workers.log');

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
    while (!(await allSucceeded())) {
      if (performance.now() > deadline) {
        throw new Error(`queue not drained within ${SCENARIO_DEADLINE_MS} ms: ${lastStatuses}`);
      }
      if (live.size === 0) {
        throw new Error(`every worker exited with jobs left undone: ${lastStatuses}\n${unexpectedExits.join('\n')}`);
      }
      await sleep(100);
    }
    elapsedMs = performance.now() - startedAt;

    // SIGTERM lets a worker finish the step it is in, so no answer is left out of the log.
    await Promise.all(
      [...live.values()].map(async (worker) => {
        worker.process.child.kill('SIGTERM');
        expect(await exitWithin(worker.process, 5_000)).toEqual({ code: 0, signal: null });
      }),
    );
    jobs = await listAllJobs(t.baseUrl);
    log = readLog(logPath);

    const executions = histogramBy(jobIds.map((id) => log.filter((l) => l.kind === 'start' && l.jobId === id).length));
    console.log(
      [
        `crash recovery: ${JOBS} jobs, ${nextWorker - 1} worker processes, ${kills.length} SIGKILLs, ` +
          `${freezes.length} freezes of ${FREEZE_MS} ms (${skippedTicks} ticks found no worker mid-job), ` +
          `${(elapsedMs / 1000).toFixed(1)} s`,
        `executions per job: ${Object.entries(executions)
          .map(([n, count]) => `${n}× → ${count} job(s)`)
          .join(', ')}`,
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
    if (logDir) rmSync(logDir, { recursive: true, force: true });
  });

  it('killed workers mid-job, and every job they held was executed again by another worker', () => {
    expect(kills.length).toBeGreaterThan(0);
    const starts = log.filter((line) => line.kind === 'start');
    const notRecovered = kills.filter(
      (kill) =>
        // The victim never completed it, and someone else started it after the kill.
        log.some((l) => l.kind === 'complete' && l.jobId === kill.jobId && l.workerId === kill.workerId) ||
        !starts.some((l) => l.jobId === kill.jobId && l.workerId !== kill.workerId),
    );
    expect(notRecovered).toEqual([]);
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

    const mismatches = jobs.flatMap((job) => {
      const accepted = completes.filter((line) => line.jobId === job.id && line.detail === '200');
      const worker = accepted[0]?.workerId;
      const result = job.result as { workerId?: string } | null;
      const startedByWorker = log.some((l) => l.kind === 'start' && l.jobId === job.id && l.workerId === worker);
      return accepted.length === 1 && result?.workerId === worker && job.lockedBy === worker && startedByWorker
        ? []
        : [{ id: job.id, accepted: accepted.map((l) => l.workerId), result, lockedBy: job.lockedBy }];
    });
    expect(mismatches).toEqual([]);
  });

  it('counts one claim (attempt) per execution the workers saw, each under its own lease token', () => {
    const starts = log.filter((line) => line.kind === 'start');
    const attemptsVsStarts = jobs
      .map((job) => ({ id: job.id, attempts: job.attempts, starts: starts.filter((l) => l.jobId === job.id).length }))
      .filter(({ attempts, starts }) => attempts !== starts);
    expect(attemptsVsStarts).toEqual([]);
    expect(new Set(starts.map((line) => line.detail)).size).toBe(starts.length);
  });

  it('saw no failed request, no unexpected answer and no crash in any worker', () => {
    expect(log.filter((line) => line.kind === 'error')).toEqual([]);
    expect(unexpectedExits).toEqual([]);
  });
});
