import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { listAllJobs, type JobJson } from './http.js';
import { exitWithin, spawnNode, type Exit, type NodeProcess } from './server-process.js';

/**
 * Worker processes (test/fixtures/crash-worker.mjs) for the crash-recovery scenarios: spawning
 * them, reading the log they share, and stopping one exactly while it is in the middle of a job.
 *
 * Each worker appends to the shared log synchronously, so a line survives a kill:
 * `start <job> <worker> <token>` after a claim, `finishing` just before the completion is sent,
 * `complete <job> <worker> <httpStatus>` with the server's answer, `lost` when a heartbeat found
 * the lease gone, `error` when a request failed (see the fixture).
 */

export const CRASH_WORKER_SCRIPT = fileURLToPath(new URL('../fixtures/crash-worker.mjs', import.meta.url));

export interface WorkerLogLine {
  kind: 'start' | 'finishing' | 'complete' | 'lost' | 'error';
  /** null on lines about no job (an error while claiming). */
  jobId: number | null;
  workerId: string;
  /** start: the lease token; complete: the HTTP status; error: what failed. */
  detail: string | undefined;
}

/** A `start` line: its worker claimed the job and holds the lease `detail`. */
export type StartLine = WorkerLogLine & { kind: 'start'; jobId: number; detail: string };

export function isStartLine(line: WorkerLogLine | undefined): line is StartLine {
  return line?.kind === 'start' && line.jobId !== null && line.detail !== undefined;
}

/** The whole lines of the shared log (a line being appended right now may be read in part). */
export function readWorkerLog(path: string): WorkerLogLine[] {
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n').slice(0, -1);
  return lines.map((line) => {
    const [kind, jobId, workerId, detail] = line.split(' ');
    return { kind: kind as WorkerLogLine['kind'], jobId: jobId === '-' ? null : Number(jobId), workerId, detail };
  });
}

export function lastLineOf(log: WorkerLogLine[], workerId: string): WorkerLogLine | undefined {
  return log.findLast((line) => line.workerId === workerId);
}

export interface CrashWorkerSettings {
  leaseMs: number;
  heartbeatMs: number;
  /** How long a worker goes on claiming from an empty queue before it exits (code 0). */
  idleExitMs: number;
}

export interface CrashWorker {
  id: string;
  process: NodeProcess;
}

/**
 * The timing both crash scenarios run with: leases short enough to expire many times in a run,
 * and workers that wait for the jobs of killed workers (idleExitMs > leaseMs + reaperIntervalMs).
 */
export const CRASH_SCENARIO_TIMING = {
  leaseMs: 1_000,
  reaperIntervalMs: 100,
  heartbeatMs: 100,
  idleExitMs: 5_000,
} as const;

/** The server variables that go with CRASH_SCENARIO_TIMING. */
export const CRASH_SCENARIO_SERVER_ENV = {
  LEASE_MS: String(CRASH_SCENARIO_TIMING.leaseMs),
  REAPER_INTERVAL_MS: String(CRASH_SCENARIO_TIMING.reaperIntervalMs),
};

/**
 * The crash workers of one scenario, sharing one log in a temporary folder of their own
 * (removed by dispose()). `W` is what the scenario knows of each worker besides its process.
 */
export class CrashWorkerPool<W extends CrashWorker = CrashWorker> {
  /** Workers that have not exited yet, by id. */
  readonly live = new Map<string, W>();
  /** Workers that ended other than by code 0 or the test's SIGKILL, with their output. */
  readonly unexpectedExits: string[] = [];
  /** How many workers were started (w1, w2, ...). */
  started = 0;
  readonly logPath: string;
  private readonly logDir: string;

  constructor(
    logDirPrefix: string,
    private readonly settings: CrashWorkerSettings = CRASH_SCENARIO_TIMING,
  ) {
    this.logDir = mkdtempSync(join(tmpdir(), logDirPrefix));
    this.logPath = join(this.logDir, 'workers.log');
  }

  /** Spawns a worker that talks to `baseUrl`; it stays in `live` until it exits. */
  start(baseUrl: string, extra: Omit<W, keyof CrashWorker>): W {
    const id = `w${++this.started}`;
    const args = [
      `--base-url=${baseUrl}`,
      `--worker-id=${id}`,
      `--log=${this.logPath}`,
      `--lease-ms=${this.settings.leaseMs}`,
      `--heartbeat-ms=${this.settings.heartbeatMs}`,
      `--idle-exit-ms=${this.settings.idleExitMs}`,
    ];
    const spawned = spawnNode(CRASH_WORKER_SCRIPT, args, { env: { ...process.env }, label: id });
    const worker = { ...extra, id, process: spawned } as W;
    this.live.set(id, worker);
    void spawned.exited.then((exit) => {
      this.live.delete(id);
      if (exit.code !== 0 && exit.signal !== 'SIGKILL') {
        this.unexpectedExits.push(`${id} ${JSON.stringify(exit)}\n${spawned.output()}`);
      }
    });
    return worker;
  }

  readLog(): WorkerLogLine[] {
    return readWorkerLog(this.logPath);
  }

  /** The live workers in a random order. */
  shuffled(): W[] {
    return [...this.live.values()].sort(() => Math.random() - 0.5);
  }

  /** SIGTERMs every live worker (it finishes the step it is in, so no answer is left out of the log); their exits. */
  async terminateAll(ms = 5_000): Promise<Exit[]> {
    return Promise.all(
      [...this.live.values()].map(async (worker) => {
        worker.process.child.kill('SIGTERM');
        return exitWithin(worker.process, ms);
      }),
    );
  }

  /**
   * Waits until every job listed by `baseUrl` succeeded. Throws if one failed or was cancelled, if
   * `deadline` (performance.now()) passes, or if every worker exited with jobs left undone.
   */
  async untilAllSucceeded(baseUrl: string, deadline: number, deadlineMs: number): Promise<void> {
    for (;;) {
      const current = await listAllJobs(baseUrl);
      const stuck = current.filter((job) => job.status === 'failed' || job.status === 'cancelled');
      if (stuck.length > 0) throw new Error(`jobs ended other than succeeded: ${JSON.stringify(stuck.slice(0, 3))}`);
      if (current.every((job) => job.status === 'succeeded')) return;
      const statuses = JSON.stringify(histogramBy(current.map((job) => job.status)));
      if (performance.now() > deadline) throw new Error(`queue not drained within ${deadlineMs} ms: ${statuses}`);
      if (this.live.size === 0) {
        throw new Error(`every worker exited with jobs left undone: ${statuses}\n${this.unexpectedExits.join('\n')}`);
      }
      await sleep(100);
    }
  }

  dispose(): void {
    rmSync(this.logDir, { recursive: true, force: true });
  }
}

/** Resolves once the kernel reports the process stopped (Linux /proc), or after a short wait elsewhere. */
export async function untilStopped(pid: number): Promise<void> {
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

export interface StoppedMidJob {
  workerId: string;
  /** The job the worker had started and not finished when it was stopped. */
  jobId: number;
  leaseToken: string;
  /** performance.now() at the SIGSTOP: the worker's heartbeats stopped then. */
  stoppedAt: number;
}

/**
 * SIGSTOPs `worker` and checks the log once it has stopped, so it cannot move on between the check
 * and what the caller does next. If its last line is a `start` (that `eligible` accepts), it holds
 * that lease with no claim or completion in flight: it is returned stopped, with what it holds.
 * Otherwise it is resumed (SIGCONT) and undefined is returned.
 */
export async function stopIfMidJob(
  worker: CrashWorker,
  logPath: string,
  eligible: (line: StartLine) => boolean = () => true,
): Promise<StoppedMidJob | undefined> {
  const pid = worker.process.child.pid;
  if (pid === undefined || worker.process.exit()) return undefined;
  worker.process.child.kill('SIGSTOP');
  const stoppedAt = performance.now();
  await untilStopped(pid);
  const last = lastLineOf(readWorkerLog(logPath), worker.id);
  if (isStartLine(last) && eligible(last)) {
    return { workerId: worker.id, jobId: last.jobId, leaseToken: last.detail, stoppedAt };
  }
  worker.process.child.kill('SIGCONT');
  return undefined;
}

/** How many times each value occurs, by value. */
export function histogramBy<T extends string | number>(values: Iterable<T>): Record<T, number> {
  const counts = {} as Record<T, number>;
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

/** The `start` lines of `jobId`: one per execution of it. */
export function startsOf(log: WorkerLogLine[], jobId: number): WorkerLogLine[] {
  return log.filter((line) => line.kind === 'start' && line.jobId === jobId);
}

/** "executions per job: 1× → n job(s), 2× → m job(s)", for the scenario's summary. */
export function describeExecutions(jobIds: number[], log: WorkerLogLine[]): string {
  const executions = histogramBy(jobIds.map((id) => startsOf(log, id).length));
  return `executions per job: ${Object.entries(executions)
    .map(([n, count]) => `${n}× → ${count} job(s)`)
    .join(', ')}`;
}

/** The killed workers' jobs that were not executed again: the victim completed it, or nobody else started it. */
export function notReExecuted<K extends { workerId: string; jobId: number }>(kills: K[], log: WorkerLogLine[]): K[] {
  const starts = log.filter((line) => line.kind === 'start');
  return kills.filter(
    (kill) =>
      log.some((l) => l.kind === 'complete' && l.jobId === kill.jobId && l.workerId === kill.workerId) ||
      !starts.some((l) => l.jobId === kill.jobId && l.workerId !== kill.workerId),
  );
}

/** Jobs whose attempt count differs from the executions (`start` lines) the workers logged. */
export function attemptsNotMatchingStarts(
  jobs: JobJson[],
  log: WorkerLogLine[],
): { id: number; attempts: number; starts: number }[] {
  return jobs
    .map((job) => ({ id: job.id, attempts: job.attempts, starts: startsOf(log, job.id).length }))
    .filter(({ attempts, starts }) => attempts !== starts);
}

/**
 * Jobs without exactly one accepted completion (200), by a worker that had started the job and
 * that the job records as result.workerId and lockedBy.
 */
export function completionMismatches(jobs: JobJson[], log: WorkerLogLine[]): Record<string, unknown>[] {
  const completes = log.filter((line) => line.kind === 'complete');
  return jobs.flatMap((job) => {
    const accepted = completes.filter((line) => line.jobId === job.id && line.detail === '200');
    const worker = accepted[0]?.workerId;
    const result = job.result as { workerId?: string } | null;
    const startedByWorker = log.some((l) => l.kind === 'start' && l.jobId === job.id && l.workerId === worker);
    return accepted.length === 1 && result?.workerId === worker && job.lockedBy === worker && startedByWorker
      ? []
      : [{ id: job.id, accepted: accepted.map((l) => l.workerId), result, lockedBy: job.lockedBy }];
  });
}

/** Lease tokens that more than one `start` line carries: each execution must have its own. */
export function reusedLeaseTokens(log: WorkerLogLine[]): string[] {
  const tokens = log.filter((line) => line.kind === 'start').map((line) => String(line.detail));
  return Object.entries(histogramBy(tokens))
    .filter(([, count]) => count > 1)
    .map(([token]) => token);
}
