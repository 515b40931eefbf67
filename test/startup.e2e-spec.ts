import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  assertServerBuilt,
  exitWithin,
  freePort,
  killAll,
  serverEnv,
  spawnServer,
  waitForHealth,
  type Exit,
} from './utils/server-process.js';

/**
 * SPEC §1: every variable is validated at start-up, and a bad value stops the server with a clear
 * message. These tests run the BUILT server (`node dist/src/main.js`) the way `npm run start:prod`
 * does, so they cover main.ts's handling of the error too, not only loadConfig.
 */

const tempDirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'orchestrator-startup-'));
  tempDirs.push(dir);
  return dir;
}

/** Runs `work` on each item, at most `width` at a time, and returns the outcomes in order. */
function inLanes<I, T>(items: I[], width: number, work: (item: I) => Promise<T>): Promise<T>[] {
  const lanes: Promise<unknown>[] = Array.from({ length: width }, () => Promise.resolve());
  return items.map((item, index) => {
    const outcome = lanes[index % width].then(() => work(item));
    lanes[index % width] = outcome.catch(() => undefined);
    return outcome;
  });
}

beforeAll(() => {
  assertServerBuilt();
});

afterAll(async () => {
  await killAll();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('start-up refuses a bad configuration', () => {
  // Each case: the bad variable, its value, and the words the message must contain.
  const cases: { variable: string; value: string; message: string }[] = [
    {
      variable: 'DATABASE_URL',
      value: 'mysql://x',
      message:
        'DATABASE_URL must be sqlite:<path>, sqlite::memory: or postgres://user:pass@host:port/db, got "mysql://x"',
    },
    { variable: 'DATABASE_URL', value: 'sqlite:', message: 'DATABASE_URL "sqlite:" needs a file path' },
    { variable: 'PORT', value: 'abc', message: 'PORT must be an integer from 0 to 65535, got "abc"' },
    { variable: 'PORT', value: '70000', message: 'PORT must be an integer from 0 to 65535, got "70000"' },
    { variable: 'LEASE_MS', value: '5', message: 'LEASE_MS must be an integer from 1000 to 3600000, got "5"' },
    { variable: 'SQLITE_SYNCHRONOUS', value: 'OFF', message: 'SQLITE_SYNCHRONOUS must be NORMAL or FULL, got "OFF"' },
    { variable: 'MAX_ATTEMPTS', value: '0', message: 'MAX_ATTEMPTS must be an integer from 1 to 100, got "0"' },
  ];

  interface Refusal {
    exit: Exit;
    stdout: string;
    stderr: string;
    /** What the refused process left in its working directory. */
    filesLeft: string[];
  }

  /** Runs the server in an empty working directory until it exits (at most 30 s on a busy machine). */
  async function refuse(variables: Record<string, string>): Promise<Refusal> {
    const cwd = tempDir();
    // Everything else is valid, so a wrongly accepted value would start a server on this port.
    const valid = { PORT: String(await freePort()), DATABASE_URL: `sqlite:${join(cwd, 'jobs.db')}` };
    const server = spawnServer(serverEnv({ ...valid, ...variables }), { cwd });
    const exit = await exitWithin(server, 30_000);
    return { exit, stdout: server.stdout(), stderr: server.stderr(), filesLeft: readdirSync(cwd) };
  }

  // Each refused start still loads the whole app first (about a second of CPU), so they run two
  // at a time, all started before the first test awaits its own outcome.
  const refusals = new Map<string, Promise<Refusal>>();
  const combined = {
    PORT: 'abc',
    LEASE_MS: '5',
    MAX_ATTEMPTS: '0',
    DATABASE_URL: 'mysql://x',
    SQLITE_SYNCHRONOUS: 'OFF',
  };
  beforeAll(() => {
    const runs = [
      ...cases.map(({ variable, value }) => ({ key: `${variable}=${value}`, variables: { [variable]: value } })),
      { key: 'combined', variables: combined },
    ];
    const outcomes = inLanes(
      runs.map((run) => run.variables),
      2,
      refuse,
    );
    runs.forEach(({ key }, index) => refusals.set(key, outcomes[index]));
    // Each test awaits its own outcome; this only keeps a failure from being reported as unhandled.
    for (const refusal of refusals.values()) refusal.catch(() => undefined);
  });

  it.each(cases)(
    'exits with code 1 and names $variable when it is "$value", touching no file',
    async ({ variable, value, message }) => {
      const refusal = await refusals.get(`${variable}=${value}`);

      expect(refusal?.exit).toEqual({ code: 1, signal: null });
      // One headline and one line naming the variable, nothing else (no stack trace).
      expect(refusal?.stderr).toMatch(/^Invalid configuration:\n {2}- .+\n$/);
      expect(refusal?.stderr).toContain(`  - ${message}`);
      expect(refusal?.stdout).not.toContain('Serving on');
      // Refused before opening anything: no database file, no ./data folder from the default URL.
      expect(refusal?.filesLeft).toEqual([]);
    },
  );

  it('reports every bad variable at once, not only the first', async () => {
    const refusal = await refusals.get('combined');

    expect(refusal?.exit).toEqual({ code: 1, signal: null });
    const [headline, ...problems] = (refusal?.stderr ?? '').trimEnd().split('\n');
    expect(headline).toBe('Invalid configuration:');
    expect(problems.sort()).toEqual([
      '  - DATABASE_URL must be sqlite:<path>, sqlite::memory: or postgres://user:pass@host:port/db, got "mysql://x"',
      '  - LEASE_MS must be an integer from 1000 to 3600000, got "5"',
      '  - MAX_ATTEMPTS must be an integer from 1 to 100, got "0"',
      '  - PORT must be an integer from 0 to 65535, got "abc"',
      '  - SQLITE_SYNCHRONOUS must be NORMAL or FULL, got "OFF"',
    ]);
    expect(refusal?.filesLeft).toEqual([]);
  });
});

describe('start-up with a valid configuration', () => {
  it('creates the database folder, answers /health, and closes the database cleanly on SIGTERM', async () => {
    const dir = tempDir();
    const dbPath = join(dir, 'nested', 'dir', 'jobs.db');
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const server = spawnServer(serverEnv({ PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: `sqlite:${dbPath}` }), {
      cwd: dir,
    });

    await waitForHealth(server, baseUrl);
    const health = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(5_000) });
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect(existsSync(dbPath)).toBe(true);
    expect(server.stdout()).toContain(`Serving on http://127.0.0.1:${port}`);

    const created = await fetch(`${baseUrl}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'written-before-sigterm', payload: { n: 1 } }),
      signal: AbortSignal.timeout(5_000),
    });
    expect(created.status).toBe(201);

    server.child.kill('SIGTERM');
    const exit = await exitWithin(server, 10_000);

    // Nest's shutdown hooks run (the database is closed), then Nest re-raises the signal so the
    // parent sees a process terminated by SIGTERM (shell status 143), the usual Unix convention.
    expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(server.stderr()).toBe('');
    // A clean close checkpoints the write-ahead log into the file and removes it (kill -9 leaves it).
    expect(readdirSync(join(dir, 'nested', 'dir'))).toEqual(['jobs.db']);

    const db = new Database(dbPath, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      // The migration ran and the acknowledged job is in the file itself, not only in the lost log.
      expect(db.prepare('SELECT name, status FROM jobs').all()).toEqual([
        { name: 'written-before-sigterm', status: 'queued' },
      ]);
    } finally {
      db.close();
    }
  });
});
