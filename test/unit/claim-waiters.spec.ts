import { SystemClock } from '../../src/common/clock.js';
import { ANY_QUEUE, LocalReadySignal } from '../../src/database/ready-signal.js';
import { ClaimWaiters } from '../../src/jobs/claim-waiters.js';

describe('ClaimWaiters', () => {
  const now = () => Date.now();
  let waiters: ClaimWaiters;

  beforeEach(() => {
    waiters = new ClaimWaiters(new LocalReadySignal(), new SystemClock());
  });
  afterEach(() => waiters.onModuleDestroy());

  it('wakes as many of the longest-waiting claimers of a queue as jobs became ready', () => {
    const [a, b, other, c] = [['gpu'], ['gpu'], ['cpu'], undefined].map((queues) => waiters.register(queues));
    waiters.onReady([{ queue: 'gpu', runAt: now(), count: 2 }]);
    expect([a.woken, b.woken, other.woken, c.woken]).toEqual([true, true, false, false]);
    waiters.onReady([{ queue: 'gpu', runAt: now(), count: 5 }]);
    expect([other.woken, c.woken]).toEqual([false, true]);
  });

  it('wakes every waiter for "any queue" (after a lost LISTEN connection)', () => {
    const all = [['a'], ['b'], undefined].map((queues) => waiters.register(queues));
    waiters.onReady([{ queue: ANY_QUEUE, runAt: 0, count: Number.MAX_SAFE_INTEGER }]);
    expect(all.map((waiter) => waiter.woken)).toEqual([true, true, true]);
  });

  it('passes on a wake its waiter leaves without using, to one waiter of the same queue', () => {
    const leaving = waiters.register(['gpu']);
    const cpu = waiters.register(['cpu']);
    const next = waiters.register(['gpu', 'cpu']);
    const last = waiters.register(['gpu']);
    waiters.onReady([{ queue: 'gpu', runAt: now(), count: 1 }]);
    expect(leaving.woken).toBe(true);
    waiters.unregister(leaving, true);
    expect([cpu.woken, next.woken, last.woken]).toEqual([false, true, false]);
  });

  it('keeps a wake that was used', () => {
    const used = waiters.register(['gpu']);
    const other = waiters.register(['gpu']);
    waiters.onReady([{ queue: 'gpu', runAt: now(), count: 1 }]);
    waiters.unregister(used, false);
    expect(other.woken).toBe(false);
    expect(waiters.size).toBe(1);
  });

  it('wakes a waiter when a job announced for later comes due', async () => {
    const waiter = waiters.register(['later']);
    waiters.onReady([{ queue: 'later', runAt: now() + 50, count: 1 }]);
    expect(waiter.woken).toBe(false);
    const started = now();
    await waiter.sleep(2_000, undefined);
    expect(waiter.woken).toBe(true);
    expect(now() - started).toBeGreaterThanOrEqual(40);
    expect(now() - started).toBeLessThan(1_000);
  });

  it('ends every sleep at shutdown and wakes claimers registered afterwards at once', async () => {
    const waiter = waiters.register(undefined);
    const sleeping = waiter.sleep(10_000, undefined);
    waiters.onModuleDestroy();
    await sleeping;
    expect(waiter.woken).toBe(true);
    expect(waiters.isClosed).toBe(true);
    expect(waiters.register(['x']).woken).toBe(true);
  });
});
