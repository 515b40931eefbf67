import type { DataSource } from 'typeorm';

/** Any fixed number: the key of the advisory lock that serialises migrations across instances. */
const MIGRATION_LOCK_KEY = 7_310_115_001;

/**
 * Runs pending migrations at start-up. On PostgreSQL several instances may start at once on one
 * database, and TypeORM takes no lock of its own: each takes a session advisory lock first, so
 * one migrates while the others wait and then find nothing pending.
 */
export async function runMigrations(dataSource: DataSource): Promise<void> {
  if (dataSource.options.type !== 'postgres') {
    await dataSource.runMigrations({ transaction: 'all' });
    return;
  }
  const lock = dataSource.createQueryRunner();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      const schema = (dataSource.options as { schema?: string }).schema ?? 'public';
      await lock.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await dataSource.runMigrations({ transaction: 'all' });
    } finally {
      await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await lock.release();
  }
}
