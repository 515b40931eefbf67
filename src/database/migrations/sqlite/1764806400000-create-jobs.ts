import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The jobs table on SQLite. Timestamps are ISO 8601 UTC text with milliseconds, written only
 * by the server, so text order is time order and the claim and reaper comparisons are plain
 * string comparisons that can use the indexes. JSON columns hold JSON text (NULL for null).
 */
export class CreateJobs1764806400000 implements MigrationInterface {
  name = 'CreateJobs1764806400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE jobs (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        name             TEXT    NOT NULL,
        queue            TEXT    NOT NULL DEFAULT 'default',
        status           TEXT    NOT NULL
                         CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        priority         INTEGER NOT NULL DEFAULT 0,
        payload          TEXT,
        result           TEXT,
        error            TEXT,
        attempts         INTEGER NOT NULL DEFAULT 0,
        max_attempts     INTEGER NOT NULL,
        run_at           TEXT    NOT NULL,
        locked_at        TEXT,
        locked_by        TEXT,
        lease_token      TEXT,
        lease_expires_at TEXT,
        heartbeat_at     TEXT,
        idempotency_key  TEXT,
        request_hash     TEXT,
        created_at       TEXT    NOT NULL,
        updated_at       TEXT    NOT NULL,
        finished_at      TEXT
      )`);
    // Claim order over queued jobs only. `status` leads although the index holds only queued rows:
    // that is what makes SQLite's planner pick it for `status = 'queued' ORDER BY ...` (checked
    // with EXPLAIN QUERY PLAN in the tests) so a claim reads the first entry instead of sorting
    // every queued job, and its cost does not grow with the number of finished jobs.
    await queryRunner.query(
      `CREATE INDEX jobs_claim_order ON jobs (status, priority DESC, run_at, id) WHERE status = 'queued'`,
    );
    await queryRunner.query(
      `CREATE INDEX jobs_queue_claim_order ON jobs (status, queue, priority DESC, run_at, id) WHERE status = 'queued'`,
    );
    // The reaper looks only at running jobs, by lease expiry.
    await queryRunner.query(
      `CREATE INDEX jobs_lease_expiry ON jobs (status, lease_expires_at) WHERE status = 'running'`,
    );
    // Keys are unique across all jobs; several NULLs are allowed.
    await queryRunner.query(`CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key)`);
    await queryRunner.query(`CREATE INDEX jobs_status_id ON jobs (status, id)`);
    await queryRunner.query(`CREATE INDEX jobs_queue_id ON jobs (queue, id)`);
    await queryRunner.query(`CREATE INDEX jobs_name_id ON jobs (name, id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE jobs`);
  }
}
