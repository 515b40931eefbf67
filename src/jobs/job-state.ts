import { InvalidTransitionError } from './job.errors.js';

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/**
 * The transitions a request may ask for, as data: `from -> [to...]`. Everything not listed is
 * refused with 409 and changes nothing.
 *
 *   queued  --claim-->  running  --succeeded-->  succeeded
 *                         |      --failed----->  failed, or queued again while attempts remain
 *   queued | running --cancel--> cancelled
 *
 * `running -> queued` is never asked for directly: it is the outcome of a failure with attempts
 * left (after a backoff) or of an expired lease (at once), decided by the service.
 */
export const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  queued: ['running', 'cancelled'],
  running: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
};

export const TERMINAL_STATUSES: readonly JobStatus[] = JOB_STATUSES.filter(
  (status) => TRANSITIONS[status].length === 0,
);

export function isTransitionAllowed(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(jobId: number, from: JobStatus, to: JobStatus): void {
  if (!isTransitionAllowed(from, to)) throw new InvalidTransitionError(jobId, from, to);
}
