import fc from 'fast-check';
import { retryDelayMs } from '../../src/jobs/retry-policy.js';

const ALMOST_ONE = 1 - Number.EPSILON;
const settings = { baseMs: 1_000, maxMs: 300_000 };

/** base * 2^(attempt-1) capped at max, computed exactly with BigInt (no float overflow). */
function uncappedOrCapped(attempt: number, baseMs: number, maxMs: number): number {
  const exponential = BigInt(baseMs) << BigInt(attempt - 1);
  return Number(exponential < BigInt(maxMs) ? exponential : BigInt(maxMs));
}

describe('retryDelayMs', () => {
  it.each([
    // attempt, random, expected delay (ms) with base 1000, max 300000
    [1, 0, 500],
    [1, 0.5, 750],
    [1, ALMOST_ONE, 1_000],
    [2, 0, 1_000],
    [2, 0.5, 1_500],
    [2, ALMOST_ONE, 2_000],
    [3, 0, 2_000],
    [3, 0.5, 3_000],
    [3, ALMOST_ONE, 4_000],
    [9, 0, 128_000],
    [9, ALMOST_ONE, 256_000],
  ])('after attempt %i with random %d waits %i ms', (attempt, random, expected) => {
    expect(retryDelayMs(attempt, settings, () => random)).toBe(expected);
  });

  it.each([
    [10, 0, 150_000],
    [10, 0.5, 225_000],
    [10, ALMOST_ONE, 300_000],
    [11, ALMOST_ONE, 300_000],
    [100, 0, 150_000],
    [100, ALMOST_ONE, 300_000],
    [5_000, ALMOST_ONE, 300_000],
  ])('caps the delay at BACKOFF_MAX_MS: attempt %i with random %d waits %i ms', (attempt, random, expected) => {
    expect(retryDelayMs(attempt, settings, () => random)).toBe(expected);
  });

  it('doubles the jitter window with each attempt until the cap', () => {
    const lows = [1, 2, 3, 4, 5].map((attempt) => retryDelayMs(attempt, { baseMs: 100, maxMs: 1_000 }, () => 0));
    const highs = [1, 2, 3, 4, 5].map((attempt) =>
      retryDelayMs(attempt, { baseMs: 100, maxMs: 1_000 }, () => ALMOST_ONE),
    );
    expect(lows).toEqual([50, 100, 200, 400, 500]);
    expect(highs).toEqual([100, 200, 400, 800, 1_000]);
  });

  it('never waits 0 ms, even with a 1 ms base and the smallest random', () => {
    expect(retryDelayMs(1, { baseMs: 1, maxMs: 1 }, () => 0)).toBe(1);
    expect(retryDelayMs(1, { baseMs: 1, maxMs: 1 }, () => ALMOST_ONE)).toBe(1);
    expect(retryDelayMs(50, { baseMs: 1, maxMs: 1 }, () => 0)).toBe(1);
  });

  it('stays within [delay/2, delay] for an odd delay whose half is not a whole millisecond', () => {
    // delay 3 ms: half is 1.5, so 2 is the smallest whole-millisecond wait in range.
    expect(retryDelayMs(1, { baseMs: 3, maxMs: 100 }, () => 0)).toBe(2);
    expect(retryDelayMs(1, { baseMs: 3, maxMs: 100 }, () => ALMOST_ONE)).toBe(3);
  });

  it('uses Math.random when no random is injected, staying within the window', () => {
    for (let i = 0; i < 200; i += 1) {
      const delay = retryDelayMs(3, settings);
      expect(delay).toBeGreaterThanOrEqual(2_000);
      expect(delay).toBeLessThanOrEqual(4_000);
    }
  });

  describe('properties over attempts 1..100 and any base <= max', () => {
    const backoff = fc
      .tuple(fc.integer({ min: 1, max: 86_400_000 }), fc.integer({ min: 1, max: 86_400_000 }))
      .map(([a, b]) => ({ baseMs: Math.min(a, b), maxMs: Math.max(a, b) }));
    const attempt = fc.integer({ min: 1, max: 100 });
    const random = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

    it('is a whole number of ms within [delay/2, delay] for delay = min(max, base*2^(attempt-1)), never 0', () => {
      fc.assert(
        fc.property(attempt, backoff, random, (n, { baseMs, maxMs }, r) => {
          const delay = uncappedOrCapped(n, baseMs, maxMs);
          const wait = retryDelayMs(n, { baseMs, maxMs }, () => r);
          expect(Number.isInteger(wait)).toBe(true);
          expect(wait).toBeGreaterThanOrEqual(1);
          expect(wait).toBeGreaterThanOrEqual(delay / 2);
          expect(wait).toBeLessThanOrEqual(delay);
        }),
        { numRuns: 2_000 },
      );
    });

    it('hits both ends of the window: random 0 gives delay/2 (rounded up), random ~1 gives delay', () => {
      fc.assert(
        fc.property(attempt, backoff, (n, { baseMs, maxMs }) => {
          const delay = uncappedOrCapped(n, baseMs, maxMs);
          expect(retryDelayMs(n, { baseMs, maxMs }, () => 0)).toBe(Math.max(1, Math.ceil(delay / 2)));
          expect(retryDelayMs(n, { baseMs, maxMs }, () => ALMOST_ONE)).toBe(delay);
        }),
        { numRuns: 1_000 },
      );
    });

    it('never shrinks when the attempt number grows or the random draw grows', () => {
      fc.assert(
        fc.property(attempt, attempt, backoff, random, random, (n1, n2, settings2, r1, r2) => {
          const [lowN, highN] = n1 <= n2 ? [n1, n2] : [n2, n1];
          const [lowR, highR] = r1 <= r2 ? [r1, r2] : [r2, r1];
          expect(retryDelayMs(lowN, settings2, () => r1)).toBeLessThanOrEqual(retryDelayMs(highN, settings2, () => r1));
          expect(retryDelayMs(n1, settings2, () => lowR)).toBeLessThanOrEqual(retryDelayMs(n1, settings2, () => highR));
        }),
        { numRuns: 1_000 },
      );
    });
  });
});
