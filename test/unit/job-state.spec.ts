import {
  assertTransition,
  isTransitionAllowed,
  JOB_STATUSES,
  type JobStatus,
  TERMINAL_STATUSES,
  TRANSITIONS,
} from '../../src/jobs/job-state.js';
import { DomainError, InvalidTransitionError } from '../../src/jobs/job.errors.js';

/** The state machine of SPEC §3, written out independently of src/ so the two are compared. */
const ALLOWED: ReadonlyArray<readonly [JobStatus, JobStatus]> = [
  ['queued', 'running'],
  ['queued', 'cancelled'],
  ['running', 'succeeded'],
  ['running', 'failed'],
  ['running', 'cancelled'],
];

const isAllowedBySpec = (from: JobStatus, to: JobStatus): boolean => ALLOWED.some(([f, t]) => f === from && t === to);

const ALL_PAIRS = JOB_STATUSES.flatMap((from) =>
  JOB_STATUSES.map((to) => ({ from, to, allowed: isAllowedBySpec(from, to) })),
);

describe('job state machine', () => {
  it('knows exactly the five statuses of the contract', () => {
    expect([...JOB_STATUSES]).toEqual(['queued', 'running', 'succeeded', 'failed', 'cancelled']);
  });

  it('lists exactly the allowed transitions of SPEC §3 and nothing else', () => {
    expect(TRANSITIONS).toEqual({
      queued: ['running', 'cancelled'],
      running: ['succeeded', 'failed', 'cancelled'],
      succeeded: [],
      failed: [],
      cancelled: [],
    });
  });

  it('treats succeeded, failed and cancelled as terminal (no way out of them)', () => {
    expect([...TERMINAL_STATUSES]).toEqual(['succeeded', 'failed', 'cancelled']);
  });

  it('never lets a request ask for queued: re-queueing is an outcome the service decides', () => {
    for (const from of JOB_STATUSES) expect(isTransitionAllowed(from, 'queued')).toBe(false);
  });

  it('has no self-transitions', () => {
    for (const status of JOB_STATUSES) expect(isTransitionAllowed(status, status)).toBe(false);
  });

  it.each(ALL_PAIRS)('isTransitionAllowed($from -> $to) is $allowed', ({ from, to, allowed }) => {
    expect(isTransitionAllowed(from, to)).toBe(allowed);
  });

  it.each(ALL_PAIRS.filter((pair) => pair.allowed))('assertTransition($from -> $to) passes', ({ from, to }) => {
    expect(() => assertTransition(7, from, to)).not.toThrow();
  });

  it.each(ALL_PAIRS.filter((pair) => !pair.allowed))(
    'assertTransition($from -> $to) throws InvalidTransitionError naming the job and both statuses',
    ({ from, to }) => {
      let thrown: unknown;
      try {
        assertTransition(42, from, to);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidTransitionError);
      expect(thrown).toBeInstanceOf(DomainError);
      const error = thrown as InvalidTransitionError;
      expect(error.code).toBe('INVALID_TRANSITION');
      expect(error.jobId).toBe(42);
      expect(error.from).toBe(from);
      expect(error.to).toBe(to);
      expect(error.message).toMatch(/\b42\b/);
      expect(error.message).toContain(from);
      expect(error.message).toContain(to);
    },
  );
});
