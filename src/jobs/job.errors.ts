import type { JobStatus } from './job-state.js';

/**
 * Domain errors: plain classes with a stable code. The services throw these; the one exception
 * filter (src/common/domain-exception.filter.ts) maps each code to its HTTP status.
 */
export abstract class DomainError extends Error {
  abstract readonly code: string;
}

export class JobNotFoundError extends DomainError {
  readonly code = 'JOB_NOT_FOUND';
  constructor(readonly jobId: number) {
    super(`Job ${jobId} not found`);
  }
}

export class InvalidTransitionError extends DomainError {
  readonly code = 'INVALID_TRANSITION';
  constructor(
    readonly jobId: number,
    readonly from: JobStatus,
    readonly to: JobStatus,
  ) {
    super(`Job ${jobId} is ${from}; it cannot move to ${to}`);
  }
}

/** A job whose runAt has not come cannot be claimed, not even by id. */
export class JobNotDueError extends DomainError {
  readonly code = 'JOB_NOT_DUE';
  constructor(
    readonly jobId: number,
    readonly runAt: Date,
  ) {
    super(`Job ${jobId} is queued but not due until ${runAt.toISOString()}; it cannot move to running yet`);
  }
}

/** The caller's lease is not the job's current one: the worker must stop working on it. */
export class LeaseLostError extends DomainError {
  readonly code = 'LEASE_LOST';
  constructor(
    readonly jobId: number,
    reason: string,
  ) {
    super(`Lease on job ${jobId} is lost: ${reason}`);
  }
}

export class IdempotencyConflictError extends DomainError {
  readonly code = 'IDEMPOTENCY_CONFLICT';
  constructor(readonly key: string) {
    super(`Idempotency key "${key}" was already used with different parameters`);
  }
}

export class InvalidRequestError extends DomainError {
  readonly code = 'INVALID_REQUEST';
}
