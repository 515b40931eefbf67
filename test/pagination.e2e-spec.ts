import { call, listAllJobs, type JobJson } from './utils/http.js';
import { startTestApp, type TestApp } from './utils/test-app.js';

interface Page {
  items: JobJson[];
  nextCursor: string | null;
}

const CURSOR_INVALID = 'cursor is not valid: pass nextCursor from a previous page unchanged';
const LIMIT_INVALID = 'limit must be an integer from 1 to 500';

const isStrictlyAscending = (ids: number[]): boolean => ids.every((id, i) => i === 0 || id > ids[i - 1]);

/**
 * SPEC §4 Lists: GET /jobs pages in ascending id order; `nextCursor` is null on the last page and
 * a cursor never repeats or skips an item, whatever is created while a client walks the pages.
 */
describe('GET /jobs pagination', () => {
  let t: TestApp;
  /** The 1,234 jobs every walk starts from (two batches: a batch holds at most 1,000). */
  let seeded: JobJson[];

  beforeAll(async () => {
    t = await startTestApp();
    const specs = Array.from({ length: 1234 }, (_, i) => ({ name: `walk-${i}` }));
    seeded = [...(await createBatch(specs.slice(0, 1000))), ...(await createBatch(specs.slice(1000)))];
  });
  afterAll(() => t.close());

  const getPage = async (query: Record<string, string | number>): Promise<Page> => {
    const params = new URLSearchParams(
      Object.entries(query).map(([key, value]): [string, string] => [key, String(value)]),
    );
    const res = await call<Page>(t.baseUrl, 'GET', `/jobs?${params}`);
    expect(res.status).toBe(200);
    return res.body;
  };

  /** Follows nextCursor until null (at most `maxPages` requests); returns every page. */
  const walk = async (query: Record<string, string | number>, maxPages = 1000): Promise<Page[]> => {
    const pages: Page[] = [];
    let cursor: string | null = null;
    do {
      pages.push(await getPage(cursor === null ? query : { ...query, cursor }));
      cursor = pages[pages.length - 1].nextCursor;
    } while (cursor !== null && pages.length < maxPages);
    expect(cursor).toBeNull();
    return pages;
  };

  const createBatch = async (jobs: Record<string, unknown>[]): Promise<JobJson[]> => {
    const res = await call<{ jobs: JobJson[] }>(t.baseUrl, 'POST', '/jobs/batch', { jobs });
    expect(res.status).toBe(201);
    return res.body.jobs;
  };

  it('walks 1,234 jobs with limit 100 in 13 pages and sees each exactly once', async () => {
    const createdIds = seeded.map((job) => job.id);
    expect(new Set(createdIds).size).toBe(1234);

    const pages = await walk({ limit: 100 });

    expect(pages.map((page) => page.items.length)).toEqual([...Array<number>(12).fill(100), 34]);
    expect(pages.slice(0, 12).every((page) => typeof page.nextCursor === 'string')).toBe(true);
    expect(pages[12].nextCursor).toBeNull();
    const seen = pages.flatMap((page) => page.items.map((job) => job.id));
    expect(isStrictlyAscending(seen)).toBe(true);
    expect(seen).toEqual(createdIds);
    expect(pages.flatMap((page) => page.items.map((job) => job.name))).toEqual(seeded.map((job) => job.name));
  });

  it('walks without repeating or skipping while 4 clients keep creating jobs', async () => {
    const before = (await listAllJobs(t.baseUrl)).map((job) => job.id);
    expect(before.slice(0, 1234)).toEqual(seeded.map((job) => job.id));

    const acknowledged: number[] = [];
    let walking = true;
    let creatorsRunning = 4;
    const creators = Array.from({ length: 4 }, async (_, creator) => {
      // Bounded: each creator stops when the walk ends or after 300 jobs, whichever comes first.
      for (let i = 0; i < 300 && walking; i++) {
        const res = await call<JobJson>(t.baseUrl, 'POST', '/jobs', { name: `during-walk-${creator}-${i}` });
        expect(res.status).toBe(201);
        acknowledged.push(res.body.id);
      }
      creatorsRunning--;
    });

    const seen: number[] = [];
    let ackedBeforeLastPage: number[] = [];
    const walker = (async () => {
      let cursor: string | null = null;
      for (let page = 0; page < 1000; page++) {
        // Let at least one create land between pages, so the walk really interleaves with writes.
        const ackedBefore = acknowledged.length;
        for (let spin = 0; spin < 500 && creatorsRunning > 0 && acknowledged.length === ackedBefore; spin++) {
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        const ackedNow = acknowledged.slice();
        const body: Page = await getPage(cursor === null ? { limit: 100 } : { limit: 100, cursor });
        seen.push(...body.items.map((job) => job.id));
        cursor = body.nextCursor;
        if (cursor === null) {
          ackedBeforeLastPage = ackedNow;
          break;
        }
      }
      walking = false;
      expect(cursor).toBeNull();
    })();
    await Promise.all([walker, ...creators]);

    expect(isStrictlyAscending(seen)).toBe(true);
    // Every job that existed before the walk began is seen exactly once.
    const seenSet = new Set(seen);
    expect(before.filter((id) => !seenSet.has(id))).toEqual([]);
    // New jobs may appear; any that do are jobs that were really created.
    const knownIds = new Set([...before, ...acknowledged]);
    expect(seen.filter((id) => !knownIds.has(id))).toEqual([]);
    // A job acknowledged before the last page was requested is committed, so the walk cannot have skipped it.
    expect(ackedBeforeLastPage.length).toBeGreaterThan(0);
    expect(ackedBeforeLastPage.filter((id) => !seenSet.has(id))).toEqual([]);

    const newSeen = seen.filter((id) => !before.includes(id)).length;
    console.log(
      `pagination: walked ${before.length} old jobs while ${acknowledged.length} were created; ${newSeen} new ones seen`,
    );

    // Once the writes stop, a fresh walk holds exactly the old jobs and every acknowledged new one.
    const after = (await listAllJobs(t.baseUrl)).map((job) => job.id);
    expect(after).toEqual([...before, ...[...acknowledged].sort((a, b) => a - b)]);
  });

  describe('filters keep the cursor semantics', () => {
    const QUEUES = ['pf-a', 'pf-b', 'pf-c'];
    const NAMES = ['pf-x', 'pf-y'];
    let all: JobJson[];

    beforeAll(async () => {
      // 301 jobs with interleaved queues and names, so matching ids are never contiguous.
      await createBatch(Array.from({ length: 301 }, (_, i) => ({ name: NAMES[i % 2], queue: QUEUES[i % 3] })));
      // Give the jobs of pf-a several statuses: 40 running, 15 of those succeeded, 10 cancelled.
      const claimed = await call<{ jobs: JobJson[] }>(t.baseUrl, 'POST', '/jobs/claim/batch', {
        limit: 40,
        queues: ['pf-a'],
      });
      expect(claimed.status).toBe(200);
      expect(claimed.body.jobs).toHaveLength(40);
      const updates = claimed.body.jobs
        .slice(0, 15)
        .map((job) => ({ id: job.id, leaseToken: job.leaseToken, status: 'succeeded' }));
      const done = await call<{ results: { statusCode: number }[] }>(t.baseUrl, 'PATCH', '/jobs/status/batch', {
        updates,
      });
      expect(done.body.results.map((result) => result.statusCode)).toEqual(Array<number>(15).fill(200));
      for (const job of claimed.body.jobs.slice(15, 25)) {
        expect((await call(t.baseUrl, 'POST', `/jobs/${job.id}/cancel`)).status).toBe(200);
      }
      all = await listAllJobs(t.baseUrl);
    });

    it.each([
      [{ queue: 'pf-b' }, 100],
      [{ name: 'pf-y' }, 150],
      [{ status: 'running' }, 15],
      [{ status: 'succeeded' }, 15],
      [{ status: 'cancelled' }, 10],
      [{ queue: 'pf-a', status: 'queued' }, 61],
      [{ queue: 'pf-c', name: 'pf-x' }, 50],
      [{ queue: 'pf-a', name: 'pf-x', status: 'running' }, 7],
    ] as [Record<string, string>, number][])(
      'pages %j 7 at a time: every page holds only matching jobs, none repeated or skipped',
      async (filter, expectedCount) => {
        const expected = all
          .filter((job) => Object.entries(filter).every(([field, value]) => job[field] === value))
          .map((job) => job.id);
        expect(expected).toHaveLength(expectedCount);

        const pages = await walk({ ...filter, limit: 7 });

        const sizes = pages.map((page) => page.items.length);
        const fullPages = Math.floor(expectedCount / 7);
        expect(sizes).toEqual(
          expectedCount % 7 === 0
            ? Array<number>(fullPages).fill(7)
            : [...Array<number>(fullPages).fill(7), expectedCount % 7],
        );
        for (const page of pages) {
          for (const job of page.items) expect(job).toMatchObject(filter);
        }
        const seen = pages.flatMap((page) => page.items.map((job) => job.id));
        expect(isStrictlyAscending(seen)).toBe(true);
        expect(seen).toEqual(expected);
      },
    );

    it('ends on a full page with nextCursor null when the matches fill the last page exactly', async () => {
      // 15 running = 3 full pages of 5: the third must say it is the last, not lead to an empty fourth.
      const pages = await walk({ status: 'running', queue: 'pf-a', limit: 5 });
      expect(pages.map((page) => page.items.length)).toEqual([5, 5, 5]);
      expect(pages.map((page) => page.nextCursor === null)).toEqual([false, false, true]);
    });

    it('answers an empty page with nextCursor null when nothing matches', async () => {
      expect(await getPage({ queue: 'pf-nowhere', limit: 10 })).toEqual({ items: [], nextCursor: null });
      expect(await getPage({ queue: 'pf-b', status: 'running' })).toEqual({ items: [], nextCursor: null });
    });
  });

  describe('limit', () => {
    it('accepts the bounds 1 and 500', async () => {
      const all = await listAllJobs(t.baseUrl);
      expect(all.length).toBeGreaterThan(500);
      const one = await getPage({ limit: 1 });
      expect(one.items.map((job) => job.id)).toEqual([all[0].id]);
      expect(one.nextCursor).toEqual(expect.any(String));
      const second = await getPage({ limit: 1, cursor: one.nextCursor as string });
      expect(second.items.map((job) => job.id)).toEqual([all[1].id]);

      const max = await getPage({ limit: 500 });
      expect(max.items.map((job) => job.id)).toEqual(all.slice(0, 500).map((job) => job.id));
      expect(max.nextCursor).toEqual(expect.any(String));
    });

    it('defaults to 50', async () => {
      const page = await getPage({});
      expect(page.items).toHaveLength(50);
      expect(page.nextCursor).toEqual(expect.any(String));
    });

    it.each(['0', '501', '1.5', 'abc', '-1', '', '1e2', ' 5'])('rejects limit=%j with 400', async (limit) => {
      const res = await call<{ statusCode: number; message: string[]; error: string }>(
        t.baseUrl,
        'GET',
        `/jobs?${new URLSearchParams({ limit })}`,
      );
      expect(res.status).toBe(400);
      expect(res.body.statusCode).toBe(400);
      expect(res.body.error).toBe('Bad Request');
      expect(res.body.message).toContain(LIMIT_INVALID);
    });
  });

  describe('cursor', () => {
    const base64url = (text: string): string => Buffer.from(text).toString('base64url');

    it.each([
      ['garbage', '%%% not a cursor %%%'],
      ['base64 of other text', base64url('hello world')],
      ['a cursor with a non-numeric id', base64url('id:abc')],
      ['a cursor with a negative id', base64url('id:-5')],
      ['a cursor with a fractional id', base64url('id:1.5')],
      ['a cursor with no id', base64url('id:')],
      ['a cursor with trailing text', base64url('id:12 or 1=1')],
      ['a cursor in padded standard base64', Buffer.from('id:12').toString('base64')],
    ])('rejects %s with 400 and a message', async (_label, cursor) => {
      const res = await call(t.baseUrl, 'GET', `/jobs?${new URLSearchParams({ cursor })}`);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ statusCode: 400, message: CURSOR_INVALID, error: 'Bad Request' });
    });

    it('rejects an empty or oversized cursor with 400', async () => {
      const empty = await call<{ message: string[] }>(t.baseUrl, 'GET', '/jobs?cursor=');
      expect(empty.status).toBe(400);
      expect(empty.body.message).toEqual(['cursor must be longer than or equal to 1 characters']);
      const long = await call<{ message: string[] }>(t.baseUrl, 'GET', `/jobs?cursor=${'A'.repeat(201)}`);
      expect(long.status).toBe(400);
      expect(long.body.message).toEqual(['cursor must be shorter than or equal to 200 characters']);
    });

    it('accepts a cursor from a page of one filter on another filter, continuing after the same id', async () => {
      const first = await getPage({ limit: 3 });
      const continued = await getPage({ limit: 3, queue: 'default', cursor: first.nextCursor as string });
      expect(continued.items.every((job) => job.id > first.items[2].id && job.queue === 'default')).toBe(true);
    });
  });
});
