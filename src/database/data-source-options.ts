import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from '../config/config.js';
import { Job } from '../jobs/job.entity.js';
import { CreateJobsPostgres1764806400000 } from './migrations/postgres/1764806400000-create-jobs.js';
import { AddDueIndexPostgres1764892800000 } from './migrations/postgres/1764892800000-add-due-index.js';
import { CreateJobs1764806400000 } from './migrations/sqlite/1764806400000-create-jobs.js';
import { AddDueIndex1764892800000 } from './migrations/sqlite/1764892800000-add-due-index.js';

/**
 * The TypeORM options for either database, shared by the app and by ormconfig.ts so the CLI
 * migrates exactly the schema the server runs on. Migrations run at start-up; `synchronize` is
 * never on: the migrations are the schema's single source of truth.
 */
export function buildDataSourceOptions(database: DatabaseConfig): DataSourceOptions {
  const common = {
    entities: [Job],
    // Migrations run at start-up through runMigrations() (database.module.ts), under a lock.
    migrationsRun: false,
    synchronize: false,
    logging: false,
  };

  if (database.kind === 'postgres') {
    return {
      ...common,
      type: 'postgres',
      url: database.url,
      schema: database.schema,
      migrations: [CreateJobsPostgres1764806400000, AddDueIndexPostgres1764892800000],
      migrationsTransactionMode: 'all',
      poolSize: database.poolSize,
      // Unqualified table names in the hand-written SQL resolve to the configured schema.
      extra: { options: `-c search_path=${database.schema}` },
    };
  }

  if (database.path !== ':memory:') mkdirSync(dirname(database.path), { recursive: true });
  return {
    ...common,
    type: 'better-sqlite3',
    migrations: [CreateJobs1764806400000, AddDueIndex1764892800000],
    database: database.path,
    // Wait for the file lock instead of failing at once if another process (a backup, the
    // TypeORM CLI) holds it briefly; this server itself never contends with itself.
    timeout: 5_000,
    prepareDatabase: (db: { pragma(source: string): unknown }) => {
      // WAL: a commit is one append to the log, and readers never block the writer.
      // synchronous=NORMAL keeps every committed transaction across a crash of the process
      // (kill -9); FULL also fsyncs each commit so it survives a power loss.
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${database.synchronous}`);
      db.pragma('busy_timeout = 5000');
    },
  };
}
