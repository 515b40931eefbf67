import type { ReadyEvent, ReadySignal } from '../database/ready-signal.js';
import type { Tx } from '../database/transactions.js';
import type { Job } from './job.entity.js';

/**
 * Announces, inside `tx`, that these queued jobs are claimable (from their runAt on): one event
 * per queue with the count and the earliest runAt, however many jobs the transaction queued.
 */
export async function announceReady(signal: ReadySignal, tx: Tx, jobs: readonly Job[]): Promise<void> {
  if (jobs.length === 0) return;
  const byQueue = new Map<string, ReadyEvent>();
  for (const job of jobs) {
    const event = byQueue.get(job.queue) ?? { queue: job.queue, runAt: job.runAt.getTime(), count: 0 };
    event.count++;
    event.runAt = Math.min(event.runAt, job.runAt.getTime());
    byQueue.set(job.queue, event);
  }
  await signal.announce(tx, [...byQueue.values()]);
}
