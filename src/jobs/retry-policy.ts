export interface BackoffSettings {
  baseMs: number;
  maxMs: number;
}

/**
 * Delay before attempt `attempt + 1` after attempt `attempt` (1-based) failed:
 * base * 2^(attempt-1), capped at max, jittered uniformly within [delay/2, delay] so a burst of
 * failures does not come back as a burst. Never 0. `random` is injectable for tests.
 */
export function retryDelayMs(
  attempt: number,
  { baseMs, maxMs }: BackoffSettings,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, attempt - 1);
  // 2^exponent overflows to Infinity long before it matters; the cap handles it.
  const delay = Math.min(maxMs, baseMs * 2 ** exponent);
  const jittered = delay / 2 + random() * (delay / 2);
  return Math.max(1, Math.min(delay, Math.round(jittered)));
}
