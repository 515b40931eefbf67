/**
 * The only reader of process.env. Every setting is parsed, range-checked and typed here, so a
 * bad value stops start-up with a message that names the variable instead of failing later.
 */

export type SqliteSynchronous = 'NORMAL' | 'FULL';

export type DatabaseConfig =
  | { kind: 'sqlite'; path: string; synchronous: SqliteSynchronous }
  | { kind: 'postgres'; url: string; poolSize: number; schema: string };

export interface AppConfig {
  port: number;
  host: string;
  database: DatabaseConfig;
  leaseMs: number;
  reaperIntervalMs: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  maxPayloadBytes: number;
}

export const APP_CONFIG = Symbol('APP_CONFIG');

/** Bounds shared by the config and the request DTOs. */
export const LIMITS = {
  leaseMs: { min: 1_000, max: 3_600_000 },
  maxAttempts: { min: 1, max: 100 },
} as const;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): AppConfig {
  const problems: string[] = [];

  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return Number(raw);
  };

  const port = int('PORT', 3000, 0, 65535);
  const host = env.HOST?.trim() || '127.0.0.1';
  const leaseMs = int('LEASE_MS', 30_000, LIMITS.leaseMs.min, LIMITS.leaseMs.max);
  const reaperIntervalMs = int('REAPER_INTERVAL_MS', 1_000, 10, 3_600_000);
  const maxAttempts = int('MAX_ATTEMPTS', 3, LIMITS.maxAttempts.min, LIMITS.maxAttempts.max);
  const backoffBaseMs = int('BACKOFF_BASE_MS', 1_000, 1, 86_400_000);
  const backoffMaxMs = int('BACKOFF_MAX_MS', 300_000, 1, 86_400_000);
  if (backoffMaxMs < backoffBaseMs) {
    problems.push(`BACKOFF_MAX_MS (${backoffMaxMs}) must not be below BACKOFF_BASE_MS (${backoffBaseMs})`);
  }
  const maxPayloadBytes = int('MAX_PAYLOAD_BYTES', 1_048_576, 1_024, 104_857_600);

  const synchronousRaw = (env.SQLITE_SYNCHRONOUS?.trim() || 'NORMAL').toUpperCase();
  let synchronous: SqliteSynchronous = 'NORMAL';
  if (synchronousRaw === 'NORMAL' || synchronousRaw === 'FULL') {
    synchronous = synchronousRaw;
  } else {
    problems.push(`SQLITE_SYNCHRONOUS must be NORMAL or FULL, got "${env.SQLITE_SYNCHRONOUS}"`);
  }
  const poolSize = int('DATABASE_POOL_SIZE', 10, 1, 1000);
  const schema = env.DATABASE_SCHEMA?.trim() || 'public';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    problems.push(`DATABASE_SCHEMA must be a lower-case PostgreSQL identifier, got "${env.DATABASE_SCHEMA}"`);
  }
  const database = parseDatabaseUrl(env.DATABASE_URL, { synchronous, poolSize, schema }, problems);

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host,
    database,
    leaseMs,
    reaperIntervalMs,
    maxAttempts,
    backoffBaseMs,
    backoffMaxMs,
    maxPayloadBytes,
  };
}

const DEFAULT_DATABASE_URL = 'sqlite:./data/orchestrator.db';

function parseDatabaseUrl(
  raw: string | undefined,
  { synchronous, poolSize, schema }: { synchronous: SqliteSynchronous; poolSize: number; schema: string },
  problems: string[],
): DatabaseConfig {
  const url = raw === undefined || raw.trim() === '' ? DEFAULT_DATABASE_URL : raw.trim();
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') {
      problems.push(`DATABASE_URL "sqlite:" needs a file path, e.g. sqlite:./data/orchestrator.db or sqlite::memory:`);
    }
    return { kind: 'sqlite', path, synchronous };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    try {
      new URL(url);
    } catch {
      problems.push(`DATABASE_URL is not a valid PostgreSQL URL: "${url}"`);
    }
    return { kind: 'postgres', url, poolSize, schema };
  }
  problems.push(
    `DATABASE_URL must be sqlite:<path>, sqlite::memory: or postgres://user:pass@host:port/db, got "${url}"`,
  );
  return { kind: 'sqlite', path: ':memory:', synchronous };
}
