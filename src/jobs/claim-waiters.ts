import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { ANY_QUEUE, ReadySignal, type ReadyEvent } from '../database/ready-signal.js';

/** The longest a claim may wait (`waitMs`). */
export const MAX_WAIT_MS = 30_000;

/** One claimer waiting for jobs in `queues` (all queues when undefined). */
export class Waiter {
  woken = false;
  private wake: (() => void) | undefined;

  constructor(readonly queues: readonly string[] | undefined) {}

  wants(queue: string): boolean {
    return queue === ANY_QUEUE || this.queues === undefined || this.queues.includes(queue);
  }

  /** Marks the waiter woken; resolves its sleep if it is sleeping. */
  notify(): void {
    this.woken = true;
    this.wake?.();
  }

  /** Sleeps until notified, `ms` pass, or `signal` aborts; returns at once if already notified. */
  sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.woken || signal?.aborted || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }
}

/**
 * Long-poll claims wait here instead of polling the database. When the ready signal says N jobs
 * became claimable in a queue, the N longest-waiting claimers of that queue wake and try to
 * claim; the rest sleep on, so an idle waiter costs no query at all and one new job does not
 * wake a thousand claimers. Jobs that come due later (delayed, retried) wake waiters through a
 * timer at their runAt.
 */
@Injectable()
export class ClaimWaiters implements OnModuleDestroy {
  private readonly waiters = new Set<Waiter>();
  private readonly dueTimers = new Set<NodeJS.Timeout>();
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(
    @Inject(ReadySignal) readySignal: ReadySignal,
    @Inject(Clock) private readonly clock: Clock,
  ) {
    this.unsubscribe = readySignal.subscribe((events) => this.onReady(events));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get size(): number {
    return this.waiters.size;
  }

  /** Registers a waiter BEFORE the claim attempt, so a job committed meanwhile still wakes it. */
  register(queues: readonly string[] | undefined): Waiter {
    const waiter = new Waiter(queues);
    if (this.closed) waiter.notify();
    else this.waiters.add(waiter);
    return waiter;
  }

  /**
   * Removes a waiter. One that leaves woken but without having used the wake (it came while its
   * claim was already running, or just as its wait ran out or its client left) passes it on, so
   * a ready job never waits for the next signal while another claimer sleeps.
   */
  unregister(waiter: Waiter, passOnWake: boolean): void {
    this.waiters.delete(waiter);
    if (!waiter.woken || !passOnWake || this.closed) return;
    for (const other of this.waiters) {
      if (other.woken) continue;
      if (waiter.queues === undefined || other.queues === undefined || waiter.queues.some((q) => other.wants(q))) {
        other.notify();
        return;
      }
    }
  }

  /** Wakes waiters as if `events` had been announced (the clock says jobs are due now). */
  onReady(events: ReadyEvent[]): void {
    const now = this.clock.now().getTime();
    for (const event of events) {
      if (event.runAt > now) {
        this.wakeLater(event, event.runAt - now);
        continue;
      }
      let toWake = event.count;
      // Set iteration order is insertion order: the longest-waiting claimers go first.
      for (const waiter of this.waiters) {
        if (toWake <= 0) break;
        if (waiter.woken || !waiter.wants(event.queue)) continue;
        waiter.notify();
        toWake--;
      }
    }
  }

  private wakeLater(event: ReadyEvent, delayMs: number): void {
    // No claim waits that long, and nobody may wait for it now: a claimer arriving later looks up
    // the next due job itself.
    if (delayMs > MAX_WAIT_MS || ![...this.waiters].some((waiter) => waiter.wants(event.queue))) return;
    const timer = setTimeout(() => {
      this.dueTimers.delete(timer);
      this.onReady([{ ...event, runAt: 0 }]);
    }, delayMs);
    timer.unref();
    this.dueTimers.add(timer);
  }

  /** At shutdown every waiting claim returns (with whatever it has: usually 204). */
  onModuleDestroy(): void {
    this.closed = true;
    this.unsubscribe();
    for (const timer of this.dueTimers) clearTimeout(timer);
    for (const waiter of this.waiters) waiter.notify();
  }
}
