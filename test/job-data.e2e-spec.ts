import { FakeClock } from './utils/fake-clock.js';
import { call, inParallel, type JobJson } from './utils/http.js';
import { startTestApp, type TestApp } from './utils/test-app.js';

const NOW = '2026-07-01T09:00:00.000Z';

describe('job data and scheduling', () => {
  let t: TestApp;
  const clock = new FakeClock(NOW);

  beforeAll(async () => {
    t = await startTestApp({ clock });
  });
  afterAll(() => t.close());
  beforeEach(() => clock.set(NOW));

  const countJobs = async (query: Record<string, string> = {}) =>
    (await t.http.get('/jobs').query({ limit: 500, ...query })).body.items.length as number;

  describe('payload and result', () => {
    it.each([
      ['an object', { model: 'resnet50', params: { lr: 0.1, layers: [1, 2, 3] }, nested: { deep: { deeper: true } } }],
      ['an array', [1, 'two', { three: 3 }, [4], null, false]],
      ['a string', 'just text'],
      ['a number', 42.5],
      ['zero', 0],
      ['false', false],
      ['null', null],
      ['unicode', { text: 'Grüße, 世界 🚀 \u0000 \u2028 "quoted" \\ back' }],
      ['an empty object', {}],
    ])('round-trips %s as payload and as result, as JSON (never as a string)', async (_what, value) => {
      const queue = `rt-${Math.random().toString(36).slice(2, 10)}`;
      const created = await t.http.post('/jobs').send({ name: 'round-trip', queue, payload: value });
      expect(created.status).toBe(201);
      expect(created.body.payload).toEqual(value);
      const claim = await t.http.post('/jobs/claim').send({ queues: [queue] });
      expect(claim.body.payload).toEqual(value);
      const done = await t.http
        .patch(`/jobs/${created.body.id}/status`)
        .send({ status: 'succeeded', leaseToken: claim.body.leaseToken, result: value });
      expect(done.body.result).toEqual(value);
      const read = await t.http.get(`/jobs/${created.body.id}`);
      expect(read.body.payload).toEqual(value);
      expect(read.body.result).toEqual(value);
    });

    it('stores payload and result as sent: keys like toString kept, only __proto__/constructor removed', async () => {
      const raw =
        '{"name":"proto-keys","queue":"proto","payload":{"__proto__":{"x":1},"toString":1,"constructor":{"a":[1]},"hasOwnProperty":true,"y":2}}';
      const created = await t.http.post('/jobs').set('Content-Type', 'application/json').send(raw);
      expect(created.status).toBe(201);
      // NestJS removes prototype-pollution keys (__proto__, constructor, prototype) from request JSON.
      const expected = { toString: 1, hasOwnProperty: true, y: 2 };
      expect(created.body.payload).toEqual(expected);
      expect(Object.keys(created.body.payload)).toEqual(['toString', 'hasOwnProperty', 'y']);
      const read = await t.http.get(`/jobs/${created.body.id}`);
      expect(read.body.payload).toEqual(expected);
      const claim = await t.http.post('/jobs/claim').send({ queues: ['proto'] });
      const done = await t.http
        .patch(`/jobs/${created.body.id}/status`)
        .set('Content-Type', 'application/json')
        .send(
          `{"status":"succeeded","leaseToken":"${claim.body.leaseToken}","result":{"valueOf":"v","isPrototypeOf":[1]}}`,
        );
      expect(done.status).toBe(200);
      expect(done.body.result).toEqual({ valueOf: 'v', isPrototypeOf: [1] });
    });

    it('tells payloads apart by every key when comparing idempotent requests', async () => {
      const first = await t.http
        .post('/jobs')
        .send({ name: 'k', idempotencyKey: 'proto-key', payload: [{ toString: 1 }] });
      expect(first.status).toBe(201);
      const other = await t.http
        .post('/jobs')
        .send({ name: 'k', idempotencyKey: 'proto-key', payload: [{ toString: 2 }] });
      expect(other.status).toBe(409);
    });

    it('accepts JSON nested 64 levels deep and refuses deeper with 400, storing nothing', async () => {
      const nest = (levels: number): unknown => (levels === 0 ? 'leaf' : { d: nest(levels - 1) });
      // The body itself is one level; its payload adds the rest.
      const ok = await t.http.post('/jobs').send({ name: 'deep-ok', payload: nest(63) });
      expect(ok.status).toBe(201);
      const before = await countJobs();
      const deep = '{"name":"too-deep","payload":' + '['.repeat(3000) + ']'.repeat(3000) + '}';
      const res = await t.http.post('/jobs').set('Content-Type', 'application/json').send(deep);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        statusCode: 400,
        message: 'Request body is nested deeper than 64 levels',
        error: 'Bad Request',
      });
      expect(await countJobs()).toBe(before);
    });

    it.each([
      [{ name: 'n', runAt: null }, 'runAt must be a valid ISO 8601 date string'],
      [{ name: 'n', queue: null }, 'queue must be a string'],
      [{ name: 'n', priority: null }, 'priority must be an integer number'],
      [{ name: 'n', idempotencyKey: null }, 'idempotencyKey must be a string'],
    ])('refuses null for an optional field (%j) with 400 instead of reading it as left out', async (body, message) => {
      const res = await t.http.post('/jobs').send(body);
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body.message)).toContain(message);
    });

    it('treats a missing payload as null', async () => {
      const created = await t.http.post('/jobs').send({ name: 'no-payload' });
      expect(created.body.payload).toBeNull();
    });

    it('refuses a payload over MAX_PAYLOAD_BYTES with 413 and stores nothing', async () => {
      const before = await countJobs();
      const big = { blob: 'x'.repeat(t.config.maxPayloadBytes + 1) };
      const res = await t.http.post('/jobs').send({ name: 'too-big', payload: big });
      expect(res.status).toBe(413);
      expect(res.body.message).toBe(
        `Request body is larger than MAX_PAYLOAD_BYTES (${t.config.maxPayloadBytes} bytes)`,
      );
      expect(await countJobs()).toBe(before);
    });

    it('accepts a payload just under the limit', async () => {
      const overhead = JSON.stringify({ name: 'near-limit', payload: '' }).length;
      const payload = 'y'.repeat(t.config.maxPayloadBytes - overhead);
      const res = await t.http.post('/jobs').send({ name: 'near-limit', payload });
      expect(res.status).toBe(201);
      expect((await t.http.get(`/jobs/${res.body.id}`)).body.payload).toBe(payload);
    });

    it('refuses a result over the limit with 413 and leaves the job running', async () => {
      const created = await t.http.post('/jobs').send({ name: 'big-result', queue: 'big-result' });
      const claim = await t.http.post('/jobs/claim').send({ queues: ['big-result'] });
      const res = await t.http.patch(`/jobs/${created.body.id}/status`).send({
        status: 'succeeded',
        leaseToken: claim.body.leaseToken,
        result: 'z'.repeat(t.config.maxPayloadBytes),
      });
      expect(res.status).toBe(413);
      expect((await t.http.get(`/jobs/${created.body.id}`)).body).toMatchObject({ status: 'running', result: null });
    });
  });

  describe('idempotent creation', () => {
    it('turns 100 concurrent creates with one key and one body into one job: one 201, 99 × 200', async () => {
      const body = { name: 'train', payload: { epochs: 3 }, idempotencyKey: 'race-1', queue: 'idem' };
      const responses = await inParallel(100, 100, () => call<JobJson>(t.baseUrl, 'POST', '/jobs', body));
      const statuses = responses.map((res) => res.status).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.filter((s) => s === 200)).toHaveLength(99);
      expect(new Set(responses.map((res) => res.body.id)).size).toBe(1);
      expect(responses.every((res) => res.body.idempotencyKey === 'race-1')).toBe(true);
      expect(await countJobs({ queue: 'idem' })).toBe(1);
    });

    it('answers 200 with the same job and a Location for a repeat, 409 naming the key for other parameters', async () => {
      const body = { name: 'eval', payload: { split: 'val' }, idempotencyKey: 'nightly-eval' };
      const first = await t.http.post('/jobs').send(body);
      expect(first.status).toBe(201);
      const repeat = await t.http.post('/jobs').send({ ...body, payload: { split: 'val' } });
      expect(repeat.status).toBe(200);
      expect(repeat.headers.location).toBe(`/jobs/${first.body.id}`);
      expect(repeat.body).toEqual(first.body);

      for (const changed of [
        { payload: { split: 'test' } },
        { name: 'eval-2' },
        { priority: 1 },
        { queue: 'other' },
        { maxAttempts: 9 },
        { delayMs: 10 },
      ]) {
        const res = await t.http.post('/jobs').send({ ...body, ...changed });
        expect(res.status).toBe(409);
        expect(res.body).toEqual({
          statusCode: 409,
          message: 'Idempotency key "nightly-eval" was already used with different parameters',
          error: 'Conflict',
        });
      }
      expect((await t.http.get('/jobs').query({ name: 'eval' })).body.items).toHaveLength(1);
    });

    it('compares parameters, not their spelling: key order and explicit defaults are the same request', async () => {
      const first = await t.http
        .post('/jobs')
        .send({ name: 'same', payload: { a: 1, b: { c: 2, d: 3 } }, idempotencyKey: 'order' });
      const reordered = await t.http.post('/jobs').send({
        idempotencyKey: 'order',
        queue: 'default',
        priority: 0,
        maxAttempts: 3,
        payload: { b: { d: 3, c: 2 }, a: 1 },
        name: 'same',
      });
      expect(reordered.status).toBe(200);
      expect(reordered.body.id).toBe(first.body.id);
    });

    it('takes the key from the Idempotency-Key header the same way, racing included', async () => {
      const body = { name: 'header-job', queue: 'idem-header' };
      const responses = await inParallel(50, 50, async () => {
        const res = await fetch(`${t.baseUrl}/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'hdr-1' },
          body: JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as JobJson };
      });
      expect(responses.filter((res) => res.status === 201)).toHaveLength(1);
      expect(responses.filter((res) => res.status === 200)).toHaveLength(49);
      expect(new Set(responses.map((res) => res.body.id)).size).toBe(1);
      expect(responses[0].body.idempotencyKey).toBe('hdr-1');

      // The header and the field name the same key.
      const viaField = await t.http.post('/jobs').send({ ...body, idempotencyKey: 'hdr-1' });
      expect(viaField.status).toBe(200);
      const different = await t.http
        .post('/jobs')
        .set('Idempotency-Key', 'hdr-1')
        .send({ ...body, priority: 5 });
      expect(different.status).toBe(409);
      expect(await countJobs({ queue: 'idem-header' })).toBe(1);
    });

    it('refuses a header and a field that disagree (400) and stores nothing', async () => {
      const before = await countJobs();
      const res = await t.http.post('/jobs').set('Idempotency-Key', 'a').send({ name: 'x', idempotencyKey: 'b' });
      expect(res.status).toBe(400);
      expect(res.body.message).toBe('Idempotency-Key header and idempotencyKey field differ; send one of them');
      const tooLong = await t.http.post('/jobs').set('Idempotency-Key', 'k'.repeat(256)).send({ name: 'x' });
      expect(tooLong.status).toBe(400);
      expect(await countJobs()).toBe(before);
    });

    it('keeps keys unique across all jobs, finished ones included', async () => {
      const first = await t.http.post('/jobs').send({ name: 'once', queue: 'idem-done', idempotencyKey: 'done-1' });
      const claim = await t.http.post('/jobs/claim').send({ queues: ['idem-done'] });
      await t.http
        .patch(`/jobs/${first.body.id}/status`)
        .send({ status: 'succeeded', leaseToken: claim.body.leaseToken });
      const again = await t.http.post('/jobs').send({ name: 'once', queue: 'idem-done', idempotencyKey: 'done-1' });
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ id: first.body.id, status: 'succeeded' });
    });
  });

  describe('queues, priority and delays', () => {
    it('claims by priority, then runAt, then id, skipping jobs not yet due', async () => {
      const queue = 'order';
      const make = async (name: string, extra: Record<string, unknown>) =>
        (await t.http.post('/jobs').send({ name, queue, ...extra })).body.id as number;
      const low = await make('low', { priority: -1000 });
      const tieLateRunAt = await make('tie-late', { priority: 10, runAt: '2026-07-01T08:00:00.000Z' });
      const tieEarlyRunAt = await make('tie-early', { priority: 10, runAt: '2026-07-01T07:00:00.000Z' });
      const tieSameA = await make('tie-a', { priority: 10, runAt: '2026-07-01T08:00:00.000Z' });
      const top = await make('top', { priority: 1000 });
      const delayed = await make('delayed', { priority: 1000, delayMs: 5_000 });
      const scheduled = await make('scheduled', { priority: 999, runAt: '2026-07-01T09:00:10.000Z' });
      const zero = await make('zero', {});

      const claimOne = async () => {
        const res = await t.http.post('/jobs/claim').send({ queues: [queue] });
        return res.status === 204 ? null : (res.body.id as number);
      };
      const order: (number | null)[] = [];
      for (let i = 0; i < 6; i++) order.push(await claimOne());
      expect(order).toEqual([top, tieEarlyRunAt, tieLateRunAt, tieSameA, zero, low]);
      expect(await claimOne()).toBeNull();

      clock.set('2026-07-01T09:00:04.999Z');
      expect(await claimOne()).toBeNull();
      clock.set('2026-07-01T09:00:05.000Z');
      expect(await claimOne()).toBe(delayed);
      expect(await claimOne()).toBeNull();
      clock.set('2026-07-01T09:00:10.000Z');
      expect(await claimOne()).toBe(scheduled);
    });

    it('sets runAt from delayMs or runAt, and refuses both together', async () => {
      const delayed = await t.http.post('/jobs').send({ name: 'd', delayMs: 1500 });
      expect(delayed.body.runAt).toBe('2026-07-01T09:00:01.500Z');
      const at = await t.http.post('/jobs').send({ name: 'r', runAt: '2026-12-24T18:00:00+01:00' });
      expect(at.body.runAt).toBe('2026-12-24T17:00:00.000Z');
      const both = await t.http.post('/jobs').send({ name: 'b', delayMs: 1, runAt: NOW });
      expect(both.status).toBe(400);
      expect(both.body.message).toBe('Send runAt or delayMs, not both');
      for (const runAt of ['2026-13-01T00:00:00Z', 'next week', '1969-12-31T23:59:59.999Z', 20260101]) {
        expect((await t.http.post('/jobs').send({ name: 'bad', runAt })).status).toBe(400);
      }
      expect((await t.http.post('/jobs').send({ name: 'bad', delayMs: -1 })).status).toBe(400);
      expect((await t.http.post('/jobs').send({ name: 'bad', delayMs: 1.5 })).status).toBe(400);
    });

    it('claims only from the queues asked for, and from all when none are named', async () => {
      const ids: Record<string, number> = {};
      for (const queue of ['gpu.a100', 'gpu.h100', 'cpu:batch']) {
        ids[queue] = (await t.http.post('/jobs').send({ name: `in-${queue}`, queue, priority: 500 })).body.id;
      }
      const h100 = await t.http.post('/jobs/claim').send({ queues: ['gpu.h100', 'nothing-here'] });
      expect(h100.body).toMatchObject({ id: ids['gpu.h100'], queue: 'gpu.h100' });
      expect((await t.http.post('/jobs/claim').send({ queues: ['gpu.h100'] })).status).toBe(204);
      const either = await t.http.post('/jobs/claim').send({ queues: ['cpu:batch', 'gpu.a100'] });
      expect([ids['cpu:batch'], ids['gpu.a100']]).toContain(either.body.id);
      const any = await t.http.post('/jobs/claim').send({});
      expect([ids['cpu:batch'], ids['gpu.a100']]).toContain(any.body.id);
      expect(any.body.id).not.toBe(either.body.id);
    });

    it('filters the list by queue, status and name together', async () => {
      await t.http.post('/jobs').send({ name: 'listed', queue: 'list-q' });
      await t.http.post('/jobs').send({ name: 'listed', queue: 'list-q' });
      await t.http.post('/jobs').send({ name: 'other', queue: 'list-q' });
      await t.http.post('/jobs').send({ name: 'listed', queue: 'list-other' });
      const res = await t.http.get('/jobs').query({ queue: 'list-q', name: 'listed', status: 'queued' });
      expect(res.body.items.map((job: JobJson) => [job.name, job.queue])).toEqual([
        ['listed', 'list-q'],
        ['listed', 'list-q'],
      ]);
      expect((await t.http.get('/jobs').query({ queue: 'bad queue!' })).status).toBe(400);
    });

    it.each([
      [{ queue: '' }, 'queue must match'],
      [{ queue: 'x'.repeat(65) }, 'queue must match'],
      [{ queue: 'has space' }, 'queue must match'],
      [{ priority: -1001 }, 'priority must not be less than -1000'],
      [{ priority: 1.5 }, 'priority must be an integer number'],
      [{ maxAttempts: 101 }, 'maxAttempts must not be greater than 100'],
    ])('refuses %j with 400', async (extra, message) => {
      const res = await t.http.post('/jobs').send({ name: 'bad', ...extra });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body.message)).toContain(message);
    });

    it('refuses bad queues on claim with 400', async () => {
      for (const queues of [[], ['ok', 'not ok'], [1], new Array(101).fill('q')]) {
        expect((await t.http.post('/jobs/claim').send({ queues })).status).toBe(400);
      }
    });
  });
});
