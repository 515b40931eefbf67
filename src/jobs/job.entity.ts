import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { JobStatus } from './job-state.js';

/**
 * A job as stored in the `jobs` table (snake_case columns, camelCase properties). The schema
 * itself is owned by the migrations in src/database/migrations; the statements that change jobs
 * are written out in job.queries.ts because each one must be a single conditional write. The
 * column types here are indicative; the per-database migrations are the schema's source of truth
 * (on PostgreSQL: json, and UTF-8 bytea for free text so that strings may hold NUL).
 */
@Entity({ name: 'jobs' })
export class Job {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ type: 'varchar', length: 64, default: 'default' })
  queue!: string;

  @Column({ type: 'varchar', length: 16 })
  status!: JobStatus;

  @Column({ type: 'integer', default: 0 })
  priority!: number;

  @Column({ type: 'json', nullable: true })
  payload!: unknown;

  @Column({ type: 'json', nullable: true })
  result!: unknown;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  @Column({ name: 'max_attempts', type: 'integer' })
  maxAttempts!: number;

  @Column({ name: 'run_at', type: Date })
  runAt!: Date;

  @Column({ name: 'locked_at', type: Date, nullable: true })
  lockedAt!: Date | null;

  @Column({ name: 'locked_by', type: 'text', nullable: true })
  lockedBy!: string | null;

  /** Secret of the current lease; only the responses that grant it show it. */
  @Column({ name: 'lease_token', type: 'text', nullable: true })
  leaseToken!: string | null;

  @Column({ name: 'lease_expires_at', type: Date, nullable: true })
  leaseExpiresAt!: Date | null;

  @Column({ name: 'heartbeat_at', type: Date, nullable: true })
  heartbeatAt!: Date | null;

  @Column({ name: 'idempotency_key', type: 'text', nullable: true })
  idempotencyKey!: string | null;

  /** Fingerprint of the parameters an idempotent create was made with. */
  @Column({ name: 'request_hash', type: 'text', nullable: true })
  requestHash!: string | null;

  @Column({ name: 'created_at', type: Date })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: Date })
  updatedAt!: Date;

  @Column({ name: 'finished_at', type: Date, nullable: true })
  finishedAt!: Date | null;
}
