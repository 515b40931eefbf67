import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The jobs table on PostgreSQL. Same columns and indexes as on SQLite, in native types:
 * timestamptz for time, and two deliberate choices forced by the contract that strings may hold
 * any Unicode, NUL included, and read back unchanged:
 * - payload/result are `json`, not `jsonb`: jsonb (and text) cannot hold \u0000, json keeps the
 *   exact text it was given;
 * - the free-text columns (name, error, locked_by, idempotency_key) are UTF-8 `bytea`, which
 *   holds any string; equality, the unique key index and the name filter work on it unchanged.
 */
export class CreateJobsPostgres1764806400000 implements MigrationInterface {
  name = 'CreateJobsPostgres1764806400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE jobs (
        id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name             bytea       NOT NULL,
        queue            text        NOT NULL DEFAULT 'default',
        status           text        NOT NULL
                         CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        priority         integer     NOT NULL DEFAULT 0,
        payload          json,
        result           json,
        error            bytea,
        attempts         integer     NOT NULL DEFAULT 0,
        max_attempts     integer     NOT NULL,
        run_at           timestamptz NOT NULL,
        locked_at        timestamptz,
        locked_by        bytea,
        lease_token      text,
        lease_expires_at timestamptz,
        heartbeat_at     timestamptz,
        idempotency_key  bytea,
        request_hash     text,
        created_at       timestamptz NOT NULL,
        updated_at       timestamptz NOT NULL,
        finished_at      timestamptz
      )`);
    // Claim order over queued jobs only (partial): a claim reads the head of this index with
    // FOR UPDATE SKIP LOCKED, so its cost does not grow with the number of finished jobs.
    await queryRunner.query(
      `CREATE INDEX jobs_claim_order ON jobs (priority DESC, run_at, id) WHERE status = 'queued'`,
    );
    await queryRunner.query(
      `CREATE INDEX jobs_queue_claim_order ON jobs (queue, priority DESC, run_at, id) WHERE status = 'queued'`,
    );
    await queryRunner.query(`CREATE INDEX jobs_lease_expiry ON jobs (lease_expires_at) WHERE status = 'running'`);
    await queryRunner.query(`CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key)`);
    await queryRunner.query(`CREATE INDEX jobs_status_id ON jobs (status, id)`);
    await queryRunner.query(`CREATE INDEX jobs_queue_id ON jobs (queue, id)`);
    await queryRunner.query(`CREATE INDEX jobs_name_id ON jobs (name, id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE jobs`);
  }
}
