import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { Clock } from '../common/clock.js';
import { ReadySignal } from '../database/ready-signal.js';
import { Transactor } from '../database/transactions.js';
import { announceReady } from './announce-ready.js';
import type { Job } from './job.entity.js';
import { findExpiredLeases, finishAttempt } from './job.queries.js';

export interface RecoveryReport {
  requeued: number[];
  failed: number[];
}

/** How many expired leases one unit of work recovers; the reaper loops until none are left. */
const RECOVERY_BATCH = 200;

/**
 * Recovers jobs whose worker stopped heartbeating: every REAPER_INTERVAL_MS, running jobs whose
 * lease expired go back to `queued` at once (no backoff) while attempts remain, else to `failed`
 * with the reason in `error`. So a job whose worker dies is claimable again within
 * LEASE_MS + REAPER_INTERVAL_MS (SPEC §5).
 *
 * Each recovery is the same conditional write as a worker's own failure, fenced by the expired
 * lease's token: if the worker completes or heartbeats first, or another instance's reaper got
 * there first, the write matches nothing and the job is left alone.
 */
@Injectable()
export class ReaperService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ReaperService.name);
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    @Inject(Transactor) private readonly transactor: Transactor,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ReadySignal) private readonly readySignal: ReadySignal,
  ) {}

  onApplicationBootstrap(): void {
    this.schedule();
  }

  onModuleDestroy(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** One pass: recovers every lease expired by now. Tests call it directly. */
  async recoverExpiredLeases(): Promise<RecoveryReport> {
    const report: RecoveryReport = { requeued: [], failed: [] };
    for (;;) {
      const recovered = await this.transactor.run(async (tx) => {
        const now = this.clock.now();
        const expired = await findExpiredLeases(tx, now, RECOVERY_BATCH);
        const changed: Job[] = [];
        for (const job of expired) {
          const attemptsLeft = job.attempts < job.maxAttempts;
          const outcome = await finishAttempt(
            tx,
            job.id,
            { leaseToken: job.leaseToken as string },
            {
              status: attemptsLeft ? 'queued' : 'failed',
              error: expiryMessage(job),
              now,
            },
          );
          if (outcome) changed.push(outcome);
        }
        await announceReady(
          this.readySignal,
          tx,
          changed.filter((job) => job.status === 'queued'),
        );
        return { changed, full: expired.length === RECOVERY_BATCH };
      });
      for (const job of recovered.changed) (job.status === 'queued' ? report.requeued : report.failed).push(job.id);
      if (!recovered.full || this.stopped) return report;
    }
  }

  /**
   * A chain of timeouts rather than an interval, so one pass never overlaps the next; each pass
   * starts REAPER_INTERVAL_MS after the previous one STARTED (not finished), so the recovery
   * bound LEASE_MS + REAPER_INTERVAL_MS does not drift by the passes' own duration.
   */
  private schedule(delayMs = this.config.reaperIntervalMs): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const started = Date.now();
      this.recoverExpiredLeases()
        .then((report) => {
          const count = report.requeued.length + report.failed.length;
          if (count > 0) {
            this.logger.log(
              `Recovered ${count} expired lease(s): re-queued [${report.requeued}], failed [${report.failed}]`,
            );
          }
        })
        .catch((error: unknown) => this.logger.error(`Lease recovery failed, retrying next interval: ${String(error)}`))
        .finally(() => this.schedule(Math.max(0, this.config.reaperIntervalMs - (Date.now() - started))));
    }, delayMs);
    this.timer.unref();
  }
}

function expiryMessage(job: Job): string {
  const holder = job.lockedBy === null ? 'an anonymous worker' : `worker "${job.lockedBy}"`;
  return (
    `Lease expired at ${(job.leaseExpiresAt as Date).toISOString()} while held by ${holder} ` +
    `(attempt ${job.attempts} of ${job.maxAttempts})`
  );
}
