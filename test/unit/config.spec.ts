import { ConfigError, loadConfig, type AppConfig } from '../../src/config/config.js';

/** The problems loadConfig reports for `env`; fails the test if it accepts it. */
function problemsWith(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

const DEFAULTS: AppConfig = {
  port: 3000,
  host: '127.0.0.1',
  database: { kind: 'sqlite', path: './data/orchestrator.db', synchronous: 'NORMAL' },
  leaseMs: 30_000,
  reaperIntervalMs: 1_000,
  maxAttempts: 3,
  backoffBaseMs: 1_000,
  backoffMaxMs: 300_000,
  maxPayloadBytes: 1_048_576,
};

describe('loadConfig defaults', () => {
  it('uses the documented default for every variable when none is set', () => {
    expect(loadConfig({})).toEqual(DEFAULTS);
  });

  it('treats an empty variable as unset', () => {
    expect(
      loadConfig({
        PORT: '',
        HOST: '',
        DATABASE_URL: '',
        LEASE_MS: '',
        REAPER_INTERVAL_MS: '',
        MAX_ATTEMPTS: '',
        BACKOFF_BASE_MS: '',
        BACKOFF_MAX_MS: '',
        MAX_PAYLOAD_BYTES: '',
      }),
    ).toEqual(DEFAULTS);
  });

  it('reads only the environment it is given', () => {
    expect(loadConfig({ UNRELATED: 'x', NODE_ENV: 'production' })).toEqual(DEFAULTS);
  });
});

describe('loadConfig parses each variable', () => {
  it.each<[string, string, Partial<AppConfig>]>([
    ['PORT', '8080', { port: 8080 }],
    ['PORT', '0', { port: 0 }],
    ['PORT', '65535', { port: 65535 }],
    ['HOST', '0.0.0.0', { host: '0.0.0.0' }],
    ['LEASE_MS', '1000', { leaseMs: 1_000 }],
    ['LEASE_MS', '3600000', { leaseMs: 3_600_000 }],
    ['REAPER_INTERVAL_MS', '250', { reaperIntervalMs: 250 }],
    ['MAX_ATTEMPTS', '1', { maxAttempts: 1 }],
    ['MAX_ATTEMPTS', '100', { maxAttempts: 100 }],
    ['BACKOFF_BASE_MS', '500', { backoffBaseMs: 500 }],
    ['BACKOFF_MAX_MS', '60000', { backoffMaxMs: 60_000 }],
    ['MAX_PAYLOAD_BYTES', '2048', { maxPayloadBytes: 2_048 }],
  ])('%s=%s', (variable, value, expected) => {
    expect(loadConfig({ [variable]: value })).toEqual({ ...DEFAULTS, ...expected });
  });

  it.each<[string, string, AppConfig['database']]>([
    [
      'sqlite:/var/lib/orchestrator/jobs.db',
      'NORMAL',
      { kind: 'sqlite', path: '/var/lib/orchestrator/jobs.db', synchronous: 'NORMAL' },
    ],
    ['sqlite:./relative/jobs.db', 'FULL', { kind: 'sqlite', path: './relative/jobs.db', synchronous: 'FULL' }],
    ['sqlite::memory:', 'NORMAL', { kind: 'sqlite', path: ':memory:', synchronous: 'NORMAL' }],
    ['sqlite:/tmp/jobs.db', 'full', { kind: 'sqlite', path: '/tmp/jobs.db', synchronous: 'FULL' }],
    ['  sqlite:/tmp/jobs.db  ', 'normal', { kind: 'sqlite', path: '/tmp/jobs.db', synchronous: 'NORMAL' }],
  ])('DATABASE_URL=%j with SQLITE_SYNCHRONOUS=%s', (url, synchronous, expected) => {
    expect(loadConfig({ DATABASE_URL: url, SQLITE_SYNCHRONOUS: synchronous }).database).toEqual(expected);
  });

  it.each([
    ['postgres://user:pass@127.0.0.1:5432/jobs', undefined, 10],
    ['postgresql://user:pass@127.0.0.1/jobs', '25', 25],
  ])('DATABASE_URL=%s with DATABASE_POOL_SIZE=%s', (url, poolSize, expectedPoolSize) => {
    const env: Record<string, string> = { DATABASE_URL: url };
    if (poolSize !== undefined) env.DATABASE_POOL_SIZE = poolSize;
    expect(loadConfig(env).database).toEqual({ kind: 'postgres', url, poolSize: expectedPoolSize, schema: 'public' });
  });

  it('accepts a backoff cap equal to its base', () => {
    expect(loadConfig({ BACKOFF_BASE_MS: '5000', BACKOFF_MAX_MS: '5000' })).toMatchObject({
      backoffBaseMs: 5_000,
      backoffMaxMs: 5_000,
    });
  });
});

describe('loadConfig rejects each bad value with a message naming the variable', () => {
  it.each<[string, string, string]>([
    ['PORT', 'abc', 'PORT must be an integer from 0 to 65535, got "abc"'],
    ['PORT', '70000', 'PORT must be an integer from 0 to 65535, got "70000"'],
    ['PORT', '-1', 'PORT must be an integer from 0 to 65535, got "-1"'],
    ['PORT', '80.5', 'PORT must be an integer from 0 to 65535, got "80.5"'],
    ['PORT', '1e3', 'PORT must be an integer from 0 to 65535, got "1e3"'],
    ['LEASE_MS', '5', 'LEASE_MS must be an integer from 1000 to 3600000, got "5"'],
    ['LEASE_MS', '3600001', 'LEASE_MS must be an integer from 1000 to 3600000, got "3600001"'],
    ['REAPER_INTERVAL_MS', '9', 'REAPER_INTERVAL_MS must be an integer from 10 to 3600000, got "9"'],
    ['REAPER_INTERVAL_MS', 'fast', 'REAPER_INTERVAL_MS must be an integer from 10 to 3600000, got "fast"'],
    ['MAX_ATTEMPTS', '0', 'MAX_ATTEMPTS must be an integer from 1 to 100, got "0"'],
    ['MAX_ATTEMPTS', '101', 'MAX_ATTEMPTS must be an integer from 1 to 100, got "101"'],
    ['BACKOFF_BASE_MS', '0', 'BACKOFF_BASE_MS must be an integer from 1 to 86400000, got "0"'],
    ['BACKOFF_MAX_MS', '86400001', 'BACKOFF_MAX_MS must be an integer from 1 to 86400000, got "86400001"'],
    ['MAX_PAYLOAD_BYTES', '1023', 'MAX_PAYLOAD_BYTES must be an integer from 1024 to 104857600, got "1023"'],
    ['MAX_PAYLOAD_BYTES', '1mb', 'MAX_PAYLOAD_BYTES must be an integer from 1024 to 104857600, got "1mb"'],
    ['DATABASE_POOL_SIZE', '0', 'DATABASE_POOL_SIZE must be an integer from 1 to 1000, got "0"'],
    ['SQLITE_SYNCHRONOUS', 'OFF', 'SQLITE_SYNCHRONOUS must be NORMAL or FULL, got "OFF"'],
    ['SQLITE_SYNCHRONOUS', 'EXTRA', 'SQLITE_SYNCHRONOUS must be NORMAL or FULL, got "EXTRA"'],
    [
      'DATABASE_URL',
      'mysql://x',
      'DATABASE_URL must be sqlite:<path>, sqlite::memory: or postgres://user:pass@host:port/db, got "mysql://x"',
    ],
    [
      'DATABASE_URL',
      './jobs.db',
      'DATABASE_URL must be sqlite:<path>, sqlite::memory: or postgres://user:pass@host:port/db, got "./jobs.db"',
    ],
    [
      'DATABASE_URL',
      'sqlite:',
      'DATABASE_URL "sqlite:" needs a file path, e.g. sqlite:./data/orchestrator.db or sqlite::memory:',
    ],
    [
      'DATABASE_URL',
      'postgres://host:port/db',
      'DATABASE_URL is not a valid PostgreSQL URL: "postgres://host:port/db"',
    ],
  ])('%s=%j', (variable, value, message) => {
    expect(problemsWith({ [variable]: value })).toEqual([message]);
  });

  it('rejects a backoff cap below its base, naming both', () => {
    expect(problemsWith({ BACKOFF_BASE_MS: '5000', BACKOFF_MAX_MS: '4000' })).toEqual([
      'BACKOFF_MAX_MS (4000) must not be below BACKOFF_BASE_MS (5000)',
    ]);
  });

  it('reports every bad variable in one error, and the message lists them all', () => {
    let thrown: unknown;
    try {
      loadConfig({ PORT: 'abc', MAX_ATTEMPTS: '0', DATABASE_URL: 'mysql://x' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const error = thrown as ConfigError;
    expect(error.problems).toHaveLength(3);
    expect(error.message).toBe(`Invalid configuration:\n  - ${error.problems.join('\n  - ')}`);
    expect(error.problems.map((problem) => problem.split(' ')[0]).sort()).toEqual([
      'DATABASE_URL',
      'MAX_ATTEMPTS',
      'PORT',
    ]);
  });

  it('takes DATABASE_SCHEMA for PostgreSQL and refuses one that is not a plain identifier', () => {
    const url = 'postgres://u@127.0.0.1:5432/db';
    expect(loadConfig({ DATABASE_URL: url, DATABASE_SCHEMA: 'tenant_7' }).database).toMatchObject({
      schema: 'tenant_7',
    });
    expect(() => loadConfig({ DATABASE_URL: url, DATABASE_SCHEMA: 'bad"; drop' })).toThrow(
      'DATABASE_SCHEMA must be a lower-case PostgreSQL identifier, got "bad"; drop"',
    );
  });
});
