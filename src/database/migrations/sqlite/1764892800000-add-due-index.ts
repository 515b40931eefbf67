import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Long-poll claims ask when the next queued job comes due: MIN(run_at) over queued jobs. */
export class AddDueIndex1764892800000 implements MigrationInterface {
  name = 'AddDueIndex1764892800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE INDEX jobs_due ON jobs (status, run_at) WHERE status = 'queued'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX jobs_due`);
  }
}
