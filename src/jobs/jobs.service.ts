import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { Clock } from '../common/clock.js';
import { ReadySignal } from '../database/ready-signal.js';
import { Transactor, type Tx } from '../database/transactions.js';
import { announceReady } from './announce-ready.js';
import { ClaimWaiters } from './claim-waiters.js';
import type { StatusUpdateDto } from './dto/batch.dto.js';
import type { ChangeStatusDto } from './dto/change-status.dto.js';
import type { ClaimJobDto } from './dto/claim-job.dto.js';
import type { CreateJobDto } from './dto/create-job.dto.js';
import type { HeartbeatDto } from './dto/heartbeat.dto.js';
import type { ListJobsQueryDto } from './dto/list-jobs.query.dto.js';
import type { Job } from './job.entity.js';
import {
  DomainError,
  IdempotencyConflictError,
  InvalidRequestError,
  InvalidTransitionError,
  JobNotDueError,
  JobNotFoundError,
  LeaseLostError,
} from './job.errors.js';
import {
  cancelJob,
  claimDueJobs,
  claimJob,
  extendLease,
  findJob,
  findJobByIdempotencyKey,
  findNextRunAt,
  finishAttempt,
  insertJob,
  listJobs,
  lockIdOrder,
  ping,
  type LeaseCondition,
  type NewJob,
} from './job.queries.js';
import { assertTransition, type JobStatus } from './job-state.js';
import { retryDelayMs } from './retry-policy.js';

export type StatusUpdateOutcome = { id: number; job: Job } | { id: number; error: DomainError };

export interface JobPage {
  items: Job[];
  nextCursor: string | null;
}

const DEFAULT_PAGE_SIZE = 50;
const EARLIEST_RUN_AT = Date.UTC(1970, 0, 1);
const LATEST_RUN_AT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Owns the units of work and the state machine; controllers only translate HTTP. */
@Injectable()
export class JobsService {
  constructor(
    @Inject(Transactor) private readonly transactor: Transactor,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ReadySignal) private readonly readySignal: ReadySignal,
    @Inject(ClaimWaiters) private readonly waiters: ClaimWaiters,
  ) {}

  /** Creates a queued job, or returns the one already created with the same idempotency key. */
  async create(input: CreateJobDto, headerKey?: string): Promise<{ job: Job; created: boolean }> {
    const now = this.clock.now();
    const newJob = this.toNewJob(input, headerKey, now);
    return this.transactor.run(async (tx) => {
      await lockIdOrder(tx);
      const outcome = await this.insertOrFindExisting(tx, newJob, now);
      if (outcome.created) await announceReady(this.readySignal, tx, [outcome.job]);
      return outcome;
    });
  }

  private async insertOrFindExisting(tx: Tx, newJob: NewJob, now: Date): Promise<{ job: Job; created: boolean }> {
    const inserted = await insertJob(tx, newJob, now);
    if (inserted) return { job: inserted, created: true };
    // Only a taken idempotency key makes the insert do nothing.
    const key = newJob.idempotencyKey as string;
    const existing = await findJobByIdempotencyKey(tx, key);
    if (!existing || existing.requestHash !== newJob.requestHash) throw new IdempotencyConflictError(key);
    return { job: existing, created: false };
  }

  /**
   * Creates all the jobs in one transaction, in order, or none: any failing item (an idempotency
   * conflict included) rolls the whole batch back. An item whose key was used before with the
   * same parameters stands for the existing job.
   */
  async createBatch(inputs: CreateJobDto[]): Promise<Job[]> {
    const now = this.clock.now();
    const newJobs = inputs.map((input, index) => {
      try {
        return this.toNewJob(input, undefined, now);
      } catch (error) {
        if (error instanceof InvalidRequestError) throw new InvalidRequestError(`jobs.${index}: ${error.message}`);
        throw error;
      }
    });
    return this.transactor.run(async (tx) => {
      await lockIdOrder(tx);
      const jobs: Job[] = [];
      const created: Job[] = [];
      for (const newJob of newJobs) {
        const outcome = await this.insertOrFindExisting(tx, newJob, now);
        jobs.push(outcome.job);
        if (outcome.created) created.push(outcome.job);
      }
      await announceReady(this.readySignal, tx, created);
      return jobs;
    });
  }

  /**
   * Applies each update as PATCH /jobs/:id/status would, each in its own unit of work, and
   * reports every outcome: one item's conflict does not undo another's success.
   */
  async changeStatusBatch(updates: StatusUpdateDto[]): Promise<StatusUpdateOutcome[]> {
    const outcomes: StatusUpdateOutcome[] = [];
    for (const { id, ...change } of updates) {
      try {
        outcomes.push({ id, job: await this.changeStatus(id, change) });
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        outcomes.push({ id, error });
      }
    }
    return outcomes;
  }

  async get(id: number): Promise<Job> {
    const job = await this.transactor.run((tx) => findJob(tx, id));
    if (!job) throw new JobNotFoundError(id);
    return job;
  }

  async list(query: ListJobsQueryDto): Promise<JobPage> {
    const limit = query.limit === undefined ? DEFAULT_PAGE_SIZE : Number(query.limit);
    const afterId = query.cursor === undefined ? 0 : decodeCursor(query.cursor);
    // One row more than the page tells whether another page exists without a second query.
    const rows = await this.transactor.run((tx) =>
      listJobs(tx, { status: query.status, queue: query.queue, name: query.name, afterId, limit: limit + 1 }),
    );
    const items = rows.slice(0, limit);
    const nextCursor = rows.length > limit ? encodeCursor(items[items.length - 1].id) : null;
    return { items, nextCursor };
  }

  /** True once the server is closing: waiting claims are being answered. */
  get isShuttingDown(): boolean {
    return this.waiters.isClosed;
  }

  /** Claims the next due job in claim order, or returns null when none is claimable. */
  async claimNext(request: ClaimJobDto, abort?: AbortSignal): Promise<Job | null> {
    const [job] = await this.claimMany(request, 1, abort);
    return job ?? null;
  }

  /**
   * Claims up to `limit` due jobs. With `waitMs`, a claim that finds nothing waits (without
   * touching the database) until a job becomes claimable in its queues, the next queued job comes
   * due, the wait runs out, or the client goes away (`abort`), and then tries again.
   */
  async claimMany(request: ClaimJobDto, limit: number, abort?: AbortSignal): Promise<Job[]> {
    const deadline = Date.now() + (request.waitMs ?? 0);
    for (;;) {
      // A client that went away gets nothing: claiming now would lease a job to nobody.
      if (abort?.aborted) return [];
      // Only a claim that may wait registers (before claiming, so no signal is missed meanwhile).
      const waiter = request.waitMs ? this.waiters.register(request.queues) : null;
      // Whether leaving now should pass on a wake this waiter got but did not use.
      let passOnWake = true;
      try {
        const { claimed, nextRunAt } = await this.transactor.run(async (tx) => {
          const now = this.clock.now();
          const lease = { workerId: request.workerId ?? null, leaseMs: request.leaseMs ?? this.config.leaseMs, now };
          const jobs = await claimDueJobs(tx, lease, request.queues, limit);
          if (jobs.length > 0 || !this.mayWait(deadline, abort)) return { claimed: jobs, nextRunAt: null };
          return { claimed: jobs, nextRunAt: await findNextRunAt(tx, now, request.queues) };
        });
        // A wake that arrived while this claim ran may be for another job: it is passed on.
        if (!waiter || claimed.length > 0 || !this.mayWait(deadline, abort)) return claimed;
        const untilDue = nextRunAt ? nextRunAt.getTime() - this.clock.now().getTime() : Infinity;
        await waiter.sleep(Math.min(deadline - Date.now(), untilDue), abort);
        if (abort?.aborted || this.waiters.isClosed) return [];
        // Woken (or due): this claimer tries again itself.
        passOnWake = false;
      } finally {
        if (waiter) this.waiters.unregister(waiter, passOnWake);
      }
    }
  }

  private mayWait(deadline: number, abort: AbortSignal | undefined): boolean {
    return deadline > Date.now() && !abort?.aborted && !this.waiters.isClosed;
  }

  /** Applies one requested transition of the state machine (PATCH /jobs/:id/status). */
  async changeStatus(id: number, change: ChangeStatusDto): Promise<Job> {
    assertFieldsFitStatus(change);
    return this.transactor.run(async (tx) => {
      const job = await findJob(tx, id);
      if (!job) throw new JobNotFoundError(id);
      assertTransition(id, job.status, change.status);
      const now = this.clock.now();
      let changed: Job | null;
      switch (change.status) {
        case 'running':
          if (job.runAt > now) throw new JobNotDueError(id, job.runAt);
          changed = await claimJob(tx, id, {
            workerId: change.workerId ?? null,
            leaseMs: change.leaseMs ?? this.config.leaseMs,
            now,
          });
          break;
        case 'cancelled':
          if (change.leaseToken !== undefined) assertLeaseHolder(job, change.leaseToken);
          changed = await cancelJob(tx, id, now, change.leaseToken);
          break;
        case 'succeeded':
          changed = await finishAttempt(tx, id, this.leaseCondition(job, change.leaseToken), {
            status: 'succeeded',
            result: change.result ?? null,
            now,
          });
          break;
        default:
          changed = await this.failAttempt(tx, job, change, now);
      }
      if (changed?.status === 'queued') await announceReady(this.readySignal, tx, [changed]);
      // The read above and the conditional write can only disagree if another server instance
      // changed the job in between; the write then did nothing and the caller gets the conflict.
      return changed ?? (await this.conflictAfterRace(tx, id, change.status));
    });
  }

  /** A failed attempt goes back to the queue after a backoff while attempts remain. */
  private failAttempt(tx: Tx, job: Job, change: ChangeStatusDto, now: Date): Promise<Job | null> {
    const retry = change.retry !== false && job.attempts < job.maxAttempts;
    const backoff = { baseMs: this.config.backoffBaseMs, maxMs: this.config.backoffMaxMs };
    return finishAttempt(tx, job.id, this.leaseCondition(job, change.leaseToken), {
      status: retry ? 'queued' : 'failed',
      error: change.error ?? null,
      runAt: retry ? new Date(now.getTime() + retryDelayMs(job.attempts, backoff)) : undefined,
      now,
    });
  }

  /** With a token the write is fenced to that lease; without one it applies to the current attempt. */
  private leaseCondition(job: Job, leaseToken: string | undefined): LeaseCondition {
    if (leaseToken === undefined) return { attempts: job.attempts };
    assertLeaseHolder(job, leaseToken);
    return { leaseToken };
  }

  private async conflictAfterRace(tx: Tx, id: number, requested: JobStatus): Promise<never> {
    const current = await findJob(tx, id);
    if (!current) throw new JobNotFoundError(id);
    if (current.status === 'running' && requested !== 'running') {
      throw new LeaseLostError(id, 'the job was claimed again under a newer lease');
    }
    throw new InvalidTransitionError(id, current.status, requested);
  }

  private async leaseLostAfterRace(tx: Tx, id: number, leaseToken: string): Promise<never> {
    const current = await findJob(tx, id);
    if (!current) throw new JobNotFoundError(id);
    assertLeaseHolder(current, leaseToken);
    throw new LeaseLostError(id, 'the lease changed while it was being extended');
  }

  /** Cancels a queued or running job; a running job's lease is revoked with it. */
  cancel(id: number): Promise<Job> {
    return this.changeStatus(id, { status: 'cancelled' });
  }

  /**
   * Extends the caller's lease and returns the new expiry: now + leaseMs, and always strictly
   * later than the current expiry (a heartbeat never shortens a lease). 409 once the lease is
   * lost (re-claimed, finished, cancelled, or expired and re-queued): the worker must stop.
   */
  async heartbeat(id: number, { leaseToken, leaseMs }: HeartbeatDto): Promise<Date> {
    return this.transactor.run(async (tx) => {
      const job = await findJob(tx, id);
      if (!job) throw new JobNotFoundError(id);
      assertLeaseHolder(job, leaseToken);
      const now = this.clock.now();
      const requested = now.getTime() + (leaseMs ?? this.config.leaseMs);
      const current = (job.leaseExpiresAt as Date).getTime();
      const extended = await extendLease(tx, id, leaseToken, new Date(Math.max(requested, current + 1)), now);
      if (!extended) return this.leaseLostAfterRace(tx, id, leaseToken);
      return extended.leaseExpiresAt as Date;
    });
  }

  async checkHealth(): Promise<void> {
    await this.transactor.run(ping);
  }

  private toNewJob(input: CreateJobDto, headerKey: string | undefined, now: Date): NewJob {
    if (headerKey !== undefined && input.idempotencyKey !== undefined && headerKey !== input.idempotencyKey) {
      throw new InvalidRequestError('Idempotency-Key header and idempotencyKey field differ; send one of them');
    }
    if (input.runAt !== undefined && input.delayMs !== undefined) {
      throw new InvalidRequestError('Send runAt or delayMs, not both');
    }
    if (headerKey !== undefined && (headerKey.length < 1 || headerKey.length > 255)) {
      throw new InvalidRequestError('Idempotency-Key header must be 1-255 characters');
    }
    const idempotencyKey = input.idempotencyKey ?? headerKey ?? null;
    const runAt = input.runAt !== undefined ? parseRunAt(input.runAt) : new Date(now.getTime() + (input.delayMs ?? 0));
    const parameters = {
      name: input.name,
      queue: input.queue ?? 'default',
      priority: input.priority ?? 0,
      payload: input.payload ?? null,
      maxAttempts: input.maxAttempts ?? this.config.maxAttempts,
    };
    return {
      ...parameters,
      runAt,
      idempotencyKey,
      // What "the same parameters" means for a repeated key: everything the caller sent, with
      // defaults filled in; a relative delayMs is compared as sent, not as the instant it gives.
      requestHash:
        idempotencyKey === null
          ? null
          : fingerprint({ ...parameters, runAt: input.runAt ?? null, delayMs: input.delayMs ?? null }),
    };
  }
}

function parseRunAt(text: string): Date {
  const runAt = new Date(text);
  const time = runAt.getTime();
  if (Number.isNaN(time) || time < EARLIEST_RUN_AT || time > LATEST_RUN_AT) {
    throw new InvalidRequestError('runAt must be an ISO 8601 timestamp between 1970 and 9999');
  }
  return runAt;
}

function assertFieldsFitStatus(change: ChangeStatusDto): void {
  const onlyWith: [keyof ChangeStatusDto, JobStatus][] = [
    ['result', 'succeeded'],
    ['error', 'failed'],
    ['retry', 'failed'],
    ['workerId', 'running'],
    ['leaseMs', 'running'],
  ];
  for (const [field, status] of onlyWith) {
    if (change[field] !== undefined && change.status !== status) {
      throw new InvalidRequestError(`${field} is only accepted with status ${status}`);
    }
  }
  if (change.status === 'running' && change.leaseToken !== undefined) {
    throw new InvalidRequestError('leaseToken is not accepted with status running: a claim grants a new lease');
  }
}

/** Throws unless `leaseToken` is the job's current lease; the message tells the worker why. */
function assertLeaseHolder(job: Job, leaseToken: string): void {
  if (job.leaseToken === leaseToken) return;
  if (job.status === 'running') {
    throw new LeaseLostError(
      job.id,
      'the token is not the current lease (the job was claimed again, or the token is wrong)',
    );
  }
  if (job.status === 'queued') {
    throw new LeaseLostError(job.id, 'the job is queued and holds no lease (an expired lease re-queued it)');
  }
  throw new LeaseLostError(job.id, `the job is ${job.status}`);
}

const CURSOR_PREFIX = 'id:';

function encodeCursor(lastId: number): string {
  return Buffer.from(`${CURSOR_PREFIX}${lastId}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const text = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString() : '';
  const match = /^id:(\d{1,15})$/.exec(text);
  if (!match) throw new InvalidRequestError('cursor is not valid: pass nextCursor from a previous page unchanged');
  return Number(match[1]);
}

/** Stable hash of a JSON value: object keys sorted, so key order does not matter. */
function fingerprint(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
