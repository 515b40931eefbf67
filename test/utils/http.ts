/** Small fetch helpers for tests that fire many real requests in parallel. */

export interface HttpResult<T = Record<string, unknown>> {
  status: number;
  body: T;
  text: string;
}

export async function call<T = Record<string, unknown>>(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  options: { timeoutMs?: number } = {},
): Promise<HttpResult<T>> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    // Unbounded unless asked: a long-poll claim may wait as long as it likes.
    signal: options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs),
  });
  const text = await res.text();
  return { status: res.status, text, body: (text ? JSON.parse(text) : null) as T };
}

/** Runs `task(i)` for i in [0, count) with at most `width` in flight. */
export async function inParallel<T>(count: number, width: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

export interface JobJson {
  id: number;
  name: string;
  status: string;
  attempts: number;
  leaseToken?: string;
  [field: string]: unknown;
}

/** Every job, walking the pages of GET /jobs. */
export async function listAllJobs(baseUrl: string, query = ''): Promise<JobJson[]> {
  const jobs: JobJson[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 10_000; page++) {
    const params = new URLSearchParams(query);
    params.set('limit', '500');
    if (cursor) params.set('cursor', cursor);
    const res = await call<{ items: JobJson[]; nextCursor: string | null }>(baseUrl, 'GET', `/jobs?${params}`);
    if (res.status !== 200) throw new Error(`GET /jobs answered ${res.status}: ${res.text}`);
    jobs.push(...res.body.items);
    cursor = res.body.nextCursor;
    if (cursor === null) return jobs;
  }
  throw new Error('GET /jobs did not reach its last page');
}
