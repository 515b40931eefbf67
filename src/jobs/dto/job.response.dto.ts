import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { Job } from '../job.entity.js';
import { JOB_STATUSES, type JobStatus } from '../job-state.js';

/** A job as the API shows it: camelCase, ISO 8601 UTC timestamps, no lease secret. */
export class JobResponseDto {
  @ApiProperty({ example: 42 }) id!: number;
  @ApiProperty({ example: 'train-resnet50' }) name!: string;
  @ApiProperty({ example: 'gpu' }) queue!: string;
  @ApiProperty({ enum: JOB_STATUSES, example: 'queued' }) status!: JobStatus;
  @ApiProperty({ example: 0 }) priority!: number;
  @ApiProperty({ nullable: true, description: 'Any JSON value.', example: { epochs: 90 } }) payload!: unknown;
  @ApiProperty({ nullable: true, description: 'Any JSON value, set on success.', example: null }) result!: unknown;
  @ApiProperty({ type: String, nullable: true, example: null, description: "Last failure's message." }) error!:
    string | null;
  @ApiProperty({ example: 0, description: 'How many times the job has been claimed.' }) attempts!: number;
  @ApiProperty({ example: 3 }) maxAttempts!: number;
  @ApiProperty({ example: '2026-12-04T16:40:00.000Z' }) runAt!: string;
  @ApiProperty({ type: String, nullable: true, example: null }) lockedAt!: string | null;
  @ApiProperty({ type: String, nullable: true, example: null }) lockedBy!: string | null;
  @ApiProperty({ type: String, nullable: true, example: null }) leaseExpiresAt!: string | null;
  @ApiProperty({ type: String, nullable: true, example: null }) heartbeatAt!: string | null;
  @ApiProperty({ type: String, nullable: true, example: null }) idempotencyKey!: string | null;
  @ApiProperty({ example: '2026-12-04T16:40:00.000Z' }) createdAt!: string;
  @ApiProperty({ example: '2026-12-04T16:40:00.000Z' }) updatedAt!: string;
  @ApiProperty({ type: String, nullable: true, example: null }) finishedAt!: string | null;
}

/** A job in a response that grants a lease: the only place the token appears. */
export class LeasedJobResponseDto extends JobResponseDto {
  @ApiProperty({
    example: '3f0c8a4e9b2d4c1e8f7a6b5c4d3e2f10',
    description: 'Send it with heartbeats and the completion.',
  })
  leaseToken!: string;
}

export class JobPageResponseDto {
  @ApiProperty({ type: [JobResponseDto] }) items!: JobResponseDto[];
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'Pass as `cursor` for the next page; null on the last page.',
  })
  nextCursor!: string | null;
}

const isoOrNull = (date: Date | null): string | null => (date ? date.toISOString() : null);

export function presentJob(job: Job): JobResponseDto {
  return {
    id: job.id,
    name: job.name,
    queue: job.queue,
    status: job.status,
    priority: job.priority,
    payload: job.payload,
    result: job.result,
    error: job.error,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    runAt: job.runAt.toISOString(),
    lockedAt: isoOrNull(job.lockedAt),
    lockedBy: job.lockedBy,
    leaseExpiresAt: isoOrNull(job.leaseExpiresAt),
    heartbeatAt: isoOrNull(job.heartbeatAt),
    idempotencyKey: job.idempotencyKey,
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
    finishedAt: isoOrNull(job.finishedAt),
  };
}

export function presentLeasedJob(job: Job): LeasedJobResponseDto {
  return { ...presentJob(job), leaseToken: job.leaseToken as string };
}
