import type { Dialect } from '../database/dialect.js';
import type { Tx } from '../database/transactions.js';
import { Job } from './job.entity.js';
import type { JobStatus } from './job-state.js';

/**
 * Every statement that reads or changes jobs. Each state change is ONE conditional write
 * (`WHERE id = ? AND status = ? [AND lease_token = ?]`) that returns the row it changed: if
 * another request got there first the condition no longer holds, nothing is written and the
 * caller sees zero rows. That is what makes the transitions atomic on any database, whatever
 * else runs concurrently; the surrounding transaction only adds the read used for messages.
 */

type Row = Record<string, unknown>;

export function toJob(row: Row, dialect: Dialect): Job {
  const job = new Job();
  job.id = Number(row.id);
  job.name = dialect.decodeText(row.name) as string;
  job.queue = String(row.queue);
  job.status = row.status as JobStatus;
  job.priority = Number(row.priority);
  job.payload = dialect.decodeJson(row.payload);
  job.result = dialect.decodeJson(row.result);
  job.error = dialect.decodeText(row.error);
  job.attempts = Number(row.attempts);
  job.maxAttempts = Number(row.max_attempts);
  job.runAt = dialect.decodeTimestamp(row.run_at) as Date;
  job.lockedAt = dialect.decodeTimestamp(row.locked_at);
  job.lockedBy = dialect.decodeText(row.locked_by);
  job.leaseToken = (row.lease_token as string | null) ?? null;
  job.leaseExpiresAt = dialect.decodeTimestamp(row.lease_expires_at);
  job.heartbeatAt = dialect.decodeTimestamp(row.heartbeat_at);
  job.idempotencyKey = dialect.decodeText(row.idempotency_key);
  job.requestHash = (row.request_hash as string | null) ?? null;
  job.createdAt = dialect.decodeTimestamp(row.created_at) as Date;
  job.updatedAt = dialect.decodeTimestamp(row.updated_at) as Date;
  job.finishedAt = dialect.decodeTimestamp(row.finished_at);
  return job;
}

async function jobs(tx: Tx, text: string, params: unknown[]): Promise<Job[]> {
  const rows = await tx.rows<Row>(text, params);
  return rows.map((row) => toJob(row, tx.dialect));
}

const iso = (date: Date): string => date.toISOString();

export interface NewJob {
  name: string;
  queue: string;
  priority: number;
  payload: unknown;
  maxAttempts: number;
  runAt: Date;
  idempotencyKey: string | null;
  requestHash: string | null;
}

/** Inserts a queued job; with an idempotency key already taken, inserts nothing (returns null). */
export async function insertJob(tx: Tx, job: NewJob, now: Date): Promise<Job | null> {
  // ON CONFLICT DO NOTHING on the unique key index: of any number of racing creates with one
  // key exactly one inserts; the others see no row and load the winner.
  const [inserted] = await jobs(
    tx,
    `INSERT INTO jobs (name, queue, status, priority, payload, max_attempts, run_at,
                       idempotency_key, request_hash, created_at, updated_at)
     VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (idempotency_key) DO NOTHING
     RETURNING *`,
    [
      tx.dialect.encodeText(job.name),
      job.queue,
      job.priority,
      tx.dialect.encodeJson(job.payload),
      job.maxAttempts,
      iso(job.runAt),
      tx.dialect.encodeText(job.idempotencyKey),
      job.requestHash,
      iso(now),
      iso(now),
    ],
  );
  return inserted ?? null;
}

export async function findJob(tx: Tx, id: number): Promise<Job | null> {
  const [job] = await jobs(tx, `SELECT * FROM jobs WHERE id = ?`, [id]);
  return job ?? null;
}

export async function findJobByIdempotencyKey(tx: Tx, key: string): Promise<Job | null> {
  const [job] = await jobs(tx, `SELECT * FROM jobs WHERE idempotency_key = ?`, [tx.dialect.encodeText(key)]);
  return job ?? null;
}

export interface JobFilter {
  status?: JobStatus;
  queue?: string;
  name?: string;
  afterId: number;
  limit: number;
}

/** One page in ascending id order, keyset-paginated: `id > afterId` never repeats or skips. */
export async function listJobs(tx: Tx, filter: JobFilter): Promise<Job[]> {
  const conditions = ['id > ?'];
  const params: unknown[] = [filter.afterId];
  for (const [column, value] of [
    ['status', filter.status],
    ['queue', filter.queue],
    ['name', filter.name === undefined ? undefined : tx.dialect.encodeText(filter.name)],
  ] as const) {
    if (value === undefined) continue;
    conditions.push(`${column} = ?`);
    params.push(value);
  }
  params.push(filter.limit);
  return jobs(tx, `SELECT * FROM jobs WHERE ${conditions.join(' AND ')} ORDER BY id LIMIT ?`, params);
}

export interface LeaseRequest {
  workerId: string | null;
  leaseMs: number;
  now: Date;
}

const CLAIM_SET = (dialect: Dialect) => `
  status = 'running', attempts = attempts + 1, locked_at = ?, locked_by = ?,
  lease_token = ${dialect.newLeaseTokenSql}, lease_expires_at = ?, heartbeat_at = NULL, updated_at = ?`;

const claimParams = (dialect: Dialect, { workerId, leaseMs, now }: LeaseRequest) => [
  iso(now),
  dialect.encodeText(workerId),
  iso(new Date(now.getTime() + leaseMs)),
  iso(now),
];

/** Claim order: highest priority, then earliest run_at, then lowest id. */
function compareClaimOrder(a: Job, b: Job): number {
  return b.priority - a.priority || a.runAt.getTime() - b.runAt.getTime() || a.id - b.id;
}

/**
 * Claims up to `limit` due, queued jobs in claim order. One statement (dialect.updateCandidates):
 * the candidate select reads the partial claim-order index and the UPDATE re-checks
 * `status = 'queued'`, so a job is handed out once even if two claims pick it as a candidate;
 * on PostgreSQL `FOR UPDATE SKIP LOCKED` additionally lets concurrent claimers pass each other
 * instead of queueing on the same rows. Each claimed row gets its own fresh lease token.
 */
export async function claimDueJobs(
  tx: Tx,
  lease: LeaseRequest,
  queues: readonly string[] | undefined,
  limit: number,
): Promise<Job[]> {
  const queueFilter = queues?.length ? `AND queue IN (${queues.map(() => '?').join(', ')})` : '';
  const statement = tx.dialect.updateCandidates(
    { text: CLAIM_SET(tx.dialect), params: claimParams(tx.dialect, lease) },
    {
      text: `SELECT id FROM jobs
             WHERE status = 'queued' AND run_at <= ? ${queueFilter}
             ORDER BY priority DESC, run_at, id
             LIMIT ? ${tx.dialect.skipLockedSql}`,
      params: [iso(lease.now), ...(queues ?? []), limit],
    },
    `status = 'queued'`,
  );
  const claimed = await jobs(tx, statement.text, statement.params);
  return claimed.sort(compareClaimOrder);
}

/** Claims one specific queued, due job (PATCH to `running`): same write as claimDueJobs. */
export async function claimJob(tx: Tx, id: number, lease: LeaseRequest): Promise<Job | null> {
  const [claimed] = await jobs(
    tx,
    `UPDATE jobs SET ${CLAIM_SET(tx.dialect)} WHERE id = ? AND status = 'queued' AND run_at <= ? RETURNING *`,
    [...claimParams(tx.dialect, lease), id, iso(lease.now)],
  );
  return claimed ?? null;
}

/** Which running lease a write applies to: a worker's token, or any (operator action). */
export type LeaseCondition = { leaseToken: string } | { attempts: number };

function leaseClause(condition: LeaseCondition): [string, unknown] {
  return 'leaseToken' in condition ? ['lease_token = ?', condition.leaseToken] : ['attempts = ?', condition.attempts];
}

/** Ends the running attempt: `succeeded`, `failed`, `cancelled`, or back to `queued` for a retry. */
export async function finishAttempt(
  tx: Tx,
  id: number,
  condition: LeaseCondition,
  outcome: {
    status: Exclude<JobStatus, 'running'>;
    result?: unknown;
    error?: string | null;
    runAt?: Date;
    now: Date;
  },
): Promise<Job | null> {
  const [clause, conditionValue] = leaseClause(condition);
  const terminal = outcome.status !== 'queued';
  // A failure always records its own message (null if it gave none); a success keeps the last one.
  const setError = outcome.error !== undefined;
  const [changed] = await jobs(
    tx,
    `UPDATE jobs
     SET status = ?, result = COALESCE(?, result), ${setError ? 'error = ?,' : ''}
         run_at = COALESCE(?, run_at), lease_token = NULL, lease_expires_at = NULL,
         finished_at = ?, updated_at = ?
     WHERE id = ? AND status = 'running' AND ${clause}
     RETURNING *`,
    [
      outcome.status,
      outcome.result === undefined ? null : tx.dialect.encodeJson(outcome.result),
      ...(setError ? [tx.dialect.encodeText(outcome.error ?? null)] : []),
      outcome.runAt ? iso(outcome.runAt) : null,
      terminal ? iso(outcome.now) : null,
      iso(outcome.now),
      id,
      conditionValue,
    ],
  );
  return changed ?? null;
}

/**
 * Cancels a job that is queued or running; a running job's lease is revoked with it. With a
 * lease token (a worker cancelling its own job) the write is fenced to that lease.
 */
export async function cancelJob(tx: Tx, id: number, now: Date, leaseToken?: string): Promise<Job | null> {
  const fence = leaseToken === undefined ? '' : 'AND lease_token = ?';
  const [cancelled] = await jobs(
    tx,
    `UPDATE jobs
     SET status = 'cancelled', lease_token = NULL, lease_expires_at = NULL,
         finished_at = ?, updated_at = ?
     WHERE id = ? AND status IN ('queued', 'running') ${fence}
     RETURNING *`,
    [iso(now), iso(now), id, ...(leaseToken === undefined ? [] : [leaseToken])],
  );
  return cancelled ?? null;
}

/**
 * PostgreSQL hands out ids at insert time but transactions commit in any order, so a page
 * could end past an id that commits later, and the cursor would skip it. Creating transactions
 * take this lock first (held to commit): ids then become visible in order. SQLite serialises
 * every unit of work anyway.
 */
export async function lockIdOrder(tx: Tx): Promise<void> {
  if (tx.dialect.serialiseInsertsSql) await tx.rows(tx.dialect.serialiseInsertsSql);
}

export async function ping(tx: Tx): Promise<void> {
  await tx.rows('SELECT 1 AS ok');
}

/** Moves a running lease's expiry; fenced by the token, so only the lease holder can extend it. */
export async function extendLease(
  tx: Tx,
  id: number,
  leaseToken: string,
  leaseExpiresAt: Date,
  now: Date,
): Promise<Job | null> {
  const [extended] = await jobs(
    tx,
    `UPDATE jobs SET lease_expires_at = ?, heartbeat_at = ?, updated_at = ?
     WHERE id = ? AND status = 'running' AND lease_token = ?
     RETURNING *`,
    [iso(leaseExpiresAt), iso(now), iso(now), id, leaseToken],
  );
  return extended ?? null;
}

/**
 * Running jobs whose lease ran out by `now` (expiry <= now), oldest expiry first. Served by the
 * partial index on running jobs' expiry: finished jobs are never scanned.
 */
export async function findExpiredLeases(tx: Tx, now: Date, limit: number): Promise<Job[]> {
  return jobs(
    tx,
    `SELECT * FROM jobs WHERE status = 'running' AND lease_expires_at <= ?
     ORDER BY lease_expires_at LIMIT ? ${tx.dialect.skipLockedSql}`,
    [iso(now), limit],
  );
}

/** When the next queued job that is not yet due comes due (null if none), for waiting claims. */
export async function findNextRunAt(tx: Tx, now: Date, queues: readonly string[] | undefined): Promise<Date | null> {
  const queueFilter = queues?.length ? `AND queue IN (${queues.map(() => '?').join(', ')})` : '';
  const [row] = await tx.rows<{ next: unknown }>(
    `SELECT MIN(run_at) AS next FROM jobs WHERE status = 'queued' AND run_at > ? ${queueFilter}`,
    [iso(now), ...(queues ?? [])],
  );
  return tx.dialect.decodeTimestamp(row?.next);
}
