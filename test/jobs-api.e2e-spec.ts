import { FakeClock } from './utils/fake-clock.js';
import { startTestApp, type TestApp } from './utils/test-app.js';

const NOW = '2026-03-01T12:00:00.000Z';

describe('jobs API (SPEC §4)', () => {
  let t: TestApp;
  const clock = new FakeClock(NOW);

  beforeAll(async () => {
    t = await startTestApp({ clock });
  });
  afterAll(() => t.close());

  const jobCount = async (): Promise<number> => {
    const res = await t.http.get('/jobs').query({ limit: 500 });
    return res.body.items.length;
  };

  describe('POST /jobs', () => {
    it('creates a queued job with every SPEC field, 201 and a Location header', async () => {
      const res = await t.http.post('/jobs').send({ name: 'bake-pizza', payload: { size: 'L' } });
      expect(res.status).toBe(201);
      expect(res.headers.location).toBe(`/jobs/${res.body.id}`);
      expect(res.body).toEqual({
        id: expect.any(Number),
        name: 'bake-pizza',
        queue: 'default',
        status: 'queued',
        priority: 0,
        payload: { size: 'L' },
        result: null,
        error: null,
        attempts: 0,
        maxAttempts: 3,
        runAt: NOW,
        lockedAt: null,
        lockedBy: null,
        leaseExpiresAt: null,
        heartbeatAt: null,
        idempotencyKey: null,
        createdAt: NOW,
        updatedAt: NOW,
        finishedAt: null,
      });
    });

    it('keeps any Unicode, NUL included, unchanged', async () => {
      const name = 'emoji 🍕 \u0000 nul 日本語';
      const res = await t.http.post('/jobs').send({ name, payload: { text: name } });
      expect(res.status).toBe(201);
      const read = await t.http.get(`/jobs/${res.body.id}`);
      expect(read.body.name).toBe(name);
      expect(read.body.payload).toEqual({ text: name });
    });

    it.each([
      [{}, 'name must be a string'],
      [{ name: '' }, 'name must be longer than or equal to 1 characters'],
      [{ name: 'x'.repeat(201) }, 'name must be shorter than or equal to 200 characters'],
      [{ name: 5 }, 'name must be a string'],
      [{ name: 'a', priority: '5' }, 'priority must be an integer number'],
      [{ name: 'a', priority: 1001 }, 'priority must not be greater than 1000'],
      [{ name: 'a', maxAttempts: 0 }, 'maxAttempts must not be less than 1'],
      [{ name: 'a', queue: 'bad queue' }, 'queue must match [A-Za-z0-9_.:-]{1,64}'],
      [{ name: 'a', colour: 'red' }, 'property colour should not exist'],
      [{ name: 'a', runAt: 'tomorrow' }, 'runAt must be a valid ISO 8601 date string'],
    ])('rejects %j with 400 naming the problem, and stores nothing', async (body, message) => {
      const before = await jobCount();
      const res = await t.http.post('/jobs').send(body);
      expect(res.status).toBe(400);
      expect(res.body.statusCode).toBe(400);
      expect(res.body.error).toBe('Bad Request');
      expect(res.body.message).toContain(message);
      expect(await jobCount()).toBe(before);
    });

    it('rejects malformed JSON with 400', async () => {
      const res = await t.http.post('/jobs').set('Content-Type', 'application/json').send('{"name": ');
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(res.body.message).toMatch(/^Malformed JSON/);
    });

    it('rejects a JSON array body with 400', async () => {
      const res = await t.http.post('/jobs').send([{ name: 'a' }]);
      expect(res.status).toBe(400);
      expect(res.body.message).toBe('Request body must be a JSON object');
    });

    it('rejects another content type with 415', async () => {
      const res = await t.http.post('/jobs').set('Content-Type', 'text/plain').send('name=a');
      expect(res.status).toBe(415);
      expect(res.body).toEqual({
        statusCode: 415,
        message: 'Content-Type must be application/json, got text/plain',
        error: 'Unsupported Media Type',
      });
    });

    it('rejects a JSON body in a charset other than UTF-8 with 415', async () => {
      const res = await t.http
        .post('/jobs')
        .set('Content-Type', 'application/json; charset=latin1')
        .send('{"name":"a"}');
      expect(res.status).toBe(415);
      expect(res.body).toMatchObject({ statusCode: 415, error: 'Unsupported Media Type' });
    });

    it('rejects a body over MAX_PAYLOAD_BYTES with 413 and stores nothing', async () => {
      const before = await jobCount();
      const res = await t.http.post('/jobs').send({ name: 'big', payload: 'x'.repeat(t.config.maxPayloadBytes) });
      expect(res.status).toBe(413);
      expect(res.body).toEqual({
        statusCode: 413,
        message: `Request body is larger than MAX_PAYLOAD_BYTES (${t.config.maxPayloadBytes} bytes)`,
        error: 'Payload Too Large',
      });
      expect(await jobCount()).toBe(before);
    });
  });

  describe('GET /jobs/:id', () => {
    it('returns the job', async () => {
      const created = await t.http.post('/jobs').send({ name: 'read-me' });
      const res = await t.http.get(`/jobs/${created.body.id}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(created.body);
    });

    it('never shows a lease token', async () => {
      await t.http.post('/jobs').send({ name: 'secret-lease', priority: 1000 });
      const claimed = await t.http.post('/jobs/claim').send({ workerId: 'w' });
      expect(claimed.body.leaseToken).toMatch(/^[0-9a-f]{32}$/);
      const res = await t.http.get(`/jobs/${claimed.body.id}`);
      expect(res.body).not.toHaveProperty('leaseToken');
      const list = await t.http.get('/jobs').query({ status: 'running' });
      for (const item of list.body.items) expect(item).not.toHaveProperty('leaseToken');
    });

    it.each(['abc', '1.5', '-1', '0', '1e3', '99999999999999999999'])('rejects id %s with 400', async (id) => {
      const res = await t.http.get(`/jobs/${id}`);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        statusCode: 400,
        message: `Job id must be a positive integer, got "${id}"`,
        error: 'Bad Request',
      });
    });

    it('answers 404 for an unknown id', async () => {
      const res = await t.http.get('/jobs/987654');
      expect(res.status).toBe(404);
      expect(res.body).toEqual({ statusCode: 404, message: 'Job 987654 not found', error: 'Not Found' });
    });
  });

  describe('GET /jobs', () => {
    it('lists in ascending id order with an envelope and filters by status', async () => {
      const res = await t.http.get('/jobs').query({ limit: 500 });
      expect(res.status).toBe(200);
      expect(res.body.nextCursor).toBeNull();
      const ids = res.body.items.map((job: { id: number }) => job.id);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      const running = await t.http.get('/jobs').query({ status: 'running' });
      expect(running.body.items.length).toBeGreaterThan(0);
      expect(running.body.items.every((job: { status: string }) => job.status === 'running')).toBe(true);
    });

    it('pages with limit and an opaque cursor, never repeating or skipping', async () => {
      for (let i = 0; i < 7; i++) await t.http.post('/jobs').send({ name: `page-${i}` });
      const all = (await t.http.get('/jobs').query({ limit: 500 })).body.items.map((j: { id: number }) => j.id);
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: Record<string, string | number> = { limit: 3 };
        if (cursor) query.cursor = cursor;
        const res = await t.http.get('/jobs').query(query);
        expect(res.status).toBe(200);
        expect(res.body.items.length).toBeLessThanOrEqual(3);
        seen.push(...res.body.items.map((j: { id: number }) => j.id));
        cursor = res.body.nextCursor;
        pages++;
      } while (cursor !== null && pages < 100);
      expect(seen).toEqual(all);
      expect(pages).toBe(Math.ceil(all.length / 3));
    });

    it.each([
      [{ limit: 0 }, 'limit must be an integer from 1 to 500'],
      [{ limit: 501 }, 'limit must be an integer from 1 to 500'],
      [{ limit: 'ten' }, 'limit must be an integer from 1 to 500'],
      [{ status: 'done' }, 'status must be one of: queued, running, succeeded, failed, cancelled'],
      [{ cursor: 'not-a-cursor' }, 'cursor is not valid'],
      [{ colour: 'red' }, 'property colour should not exist'],
    ])('rejects query %j with 400', async (query, message) => {
      const res = await t.http.get('/jobs').query(query);
      expect(res.status).toBe(400);
      expect(res.body.statusCode).toBe(400);
      expect(JSON.stringify(res.body.message)).toContain(message);
    });
  });

  describe('POST /jobs/claim', () => {
    it('claims the next job with a lease, then 204 with an empty body when none is left', async () => {
      // Drain whatever earlier tests left, then work on a known set.
      while ((await t.http.post('/jobs/claim').send({})).status === 200);
      const created = await t.http.post('/jobs').send({ name: 'only-one', payload: [1, 2] });
      const res = await t.http.post('/jobs/claim').send({ workerId: 'chef-1', leaseMs: 60_000 });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: created.body.id,
        status: 'running',
        attempts: 1,
        lockedAt: NOW,
        lockedBy: 'chef-1',
        leaseExpiresAt: new Date(Date.parse(NOW) + 60_000).toISOString(),
        payload: [1, 2],
      });
      expect(res.body.leaseToken).toMatch(/^[0-9a-f]{32}$/);

      const empty = await t.http.post('/jobs/claim').send({ workerId: 'chef-1' });
      expect(empty.status).toBe(204);
      expect(empty.text).toBe('');
      expect(empty.headers['content-length'] ?? '0').toBe('0');
    });

    it('accepts a claim without any body', async () => {
      const res = await t.http.post('/jobs/claim');
      expect(res.status).toBe(204);
    });

    it('uses LEASE_MS when no leaseMs is given', async () => {
      await t.http.post('/jobs').send({ name: 'default-lease' });
      const res = await t.http.post('/jobs/claim').send({});
      expect(res.body.leaseExpiresAt).toBe(new Date(Date.parse(NOW) + t.config.leaseMs).toISOString());
      expect(res.body.lockedBy).toBeNull();
    });

    it.each([
      [{ leaseMs: 10 }, 'leaseMs must not be less than 1000'],
      [{ leaseMs: '5000' }, 'leaseMs must be an integer number'],
      [{ workerId: 7 }, 'workerId must be a string'],
      [{ queues: 'gpu' }, 'queues must be an array'],
      [{ speed: 'fast' }, 'property speed should not exist'],
    ])('rejects %j with 400 and claims nothing', async (body, message) => {
      await t.http.post('/jobs').send({ name: 'must-stay-queued' });
      const queuedBefore = (await t.http.get('/jobs').query({ status: 'queued', limit: 500 })).body.items.length;
      const res = await t.http.post('/jobs/claim').send(body);
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body.message)).toContain(message);
      const queuedAfter = (await t.http.get('/jobs').query({ status: 'queued', limit: 500 })).body.items.length;
      expect(queuedAfter).toBe(queuedBefore);
    });
  });

  describe('PATCH /jobs/:id/status', () => {
    it('completes a claimed job with its lease token and stores the result', async () => {
      await t.http.post('/jobs').send({ name: 'complete-me', priority: 1000 });
      const claimed = await t.http.post('/jobs/claim').send({ workerId: 'w1' });
      clock.advance(1500);
      const res = await t.http
        .patch(`/jobs/${claimed.body.id}/status`)
        .send({ status: 'succeeded', leaseToken: claimed.body.leaseToken, result: { ok: true } });
      expect(res.status).toBe(200);
      const finishedAt = new Date(Date.parse(NOW) + 1500).toISOString();
      expect(res.body).toMatchObject({ status: 'succeeded', result: { ok: true }, finishedAt, leaseExpiresAt: null });
      expect(res.body).not.toHaveProperty('leaseToken');
      clock.set(NOW);
    });

    it('answers 404 for an unknown job and 400 for a bad body', async () => {
      const missing = await t.http.patch('/jobs/999999/status').send({ status: 'succeeded' });
      expect(missing.status).toBe(404);
      const bad = await t.http.patch('/jobs/1/status').send({ status: 'done' });
      expect(bad.status).toBe(400);
      expect(bad.body.message).toEqual(['status must be one of: queued, running, succeeded, failed, cancelled']);
    });

    it('refuses to run a job by id before its runAt (409), and runs it once due', async () => {
      const created = await t.http.post('/jobs').send({ name: 'later', delayMs: 60_000 });
      const early = await t.http.patch(`/jobs/${created.body.id}/status`).send({ status: 'running' });
      expect(early.status).toBe(409);
      expect(early.body).toEqual({
        statusCode: 409,
        message: `Job ${created.body.id} is queued but not due until ${created.body.runAt}; it cannot move to running yet`,
        error: 'Conflict',
      });
      expect((await t.http.get(`/jobs/${created.body.id}`)).body).toEqual(created.body);
      clock.advance(60_000);
      const due = await t.http.patch(`/jobs/${created.body.id}/status`).send({ status: 'running', workerId: 'op' });
      expect(due.status).toBe(200);
      expect(due.body).toMatchObject({ status: 'running', lockedBy: 'op', attempts: 1 });
      clock.set(NOW);
    });

    it("records each failure's own message: a failure without one clears the previous message", async () => {
      const created = await t.http.post('/jobs').send({ name: 'flaky', priority: 999 });
      const first = await t.http.patch(`/jobs/${created.body.id}/status`).send({ status: 'running' });
      const failed = await t.http
        .patch(`/jobs/${created.body.id}/status`)
        .send({ status: 'failed', leaseToken: first.body.leaseToken, error: 'first' });
      expect(failed.body).toMatchObject({ status: 'queued', error: 'first' });
      clock.set(failed.body.runAt);
      const second = await t.http.patch(`/jobs/${created.body.id}/status`).send({ status: 'running' });
      const silent = await t.http
        .patch(`/jobs/${created.body.id}/status`)
        .send({ status: 'failed', leaseToken: second.body.leaseToken });
      expect(silent.body).toMatchObject({ status: 'queued', error: null, attempts: 2 });
      clock.set(NOW);
    });

    it('answers 409 naming the job, its status and the requested one', async () => {
      const created = await t.http.post('/jobs').send({ name: 'not-running' });
      const res = await t.http.patch(`/jobs/${created.body.id}/status`).send({ status: 'succeeded' });
      expect(res.status).toBe(409);
      expect(res.body).toEqual({
        statusCode: 409,
        message: `Job ${created.body.id} is queued; it cannot move to succeeded`,
        error: 'Conflict',
      });
    });
  });

  describe('GET /health and docs', () => {
    it('answers 200 while the database answers', async () => {
      const res = await t.http.get('/health');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ok' });
    });

    it('serves Swagger UI at /docs and documents every endpoint at /docs-json', async () => {
      const ui = await t.http.get('/docs').redirects(1);
      expect(ui.status).toBe(200);
      expect(ui.text).toContain('swagger');
      const json = await t.http.get('/docs-json');
      expect(json.status).toBe(200);
      expect(Object.keys(json.body.paths).sort()).toEqual(
        [
          '/health',
          '/jobs',
          '/jobs/batch',
          '/jobs/claim',
          '/jobs/claim/batch',
          '/jobs/status/batch',
          '/jobs/{id}',
          '/jobs/{id}/cancel',
          '/jobs/{id}/heartbeat',
          '/jobs/{id}/status',
        ].sort(),
      );
      expect(json.body.paths['/jobs/claim'].post.responses).toHaveProperty('204');
      expect(json.body.components.schemas.LeasedJobResponseDto.properties).toHaveProperty('leaseToken');
    });
  });
});
