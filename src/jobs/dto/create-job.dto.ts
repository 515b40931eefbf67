import { Optional } from '../../common/optional.decorator.js';
import { ApiPropertyOptional, ApiProperty } from '@nestjs/swagger';
import { Allow, IsInt, IsISO8601, IsString, Length, Matches, Max, Min } from 'class-validator';
import { LIMITS } from '../../config/config.js';

export const QUEUE_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
export const MAX_DELAY_MS = 10 * 365 * 24 * 3_600_000;

export class CreateJobDto {
  @ApiProperty({
    description: 'What the job is, 1-200 characters.',
    example: 'train-resnet50',
    minLength: 1,
    maxLength: 200,
  })
  @IsString()
  @Length(1, 200)
  name!: string;

  @ApiPropertyOptional({
    description: 'Input of the job: any JSON value (default null).',
    example: { dataset: 's3://bucket/imagenet', epochs: 90 },
  })
  @Allow()
  payload?: unknown;

  @ApiPropertyOptional({
    description: 'Queue name.',
    example: 'gpu',
    default: 'default',
    pattern: QUEUE_PATTERN.source,
  })
  @Optional()
  @IsString()
  @Matches(QUEUE_PATTERN, { message: 'queue must match [A-Za-z0-9_.:-]{1,64}' })
  queue?: string;

  @ApiPropertyOptional({
    description: 'Higher is claimed first.',
    example: 10,
    default: 0,
    minimum: -1000,
    maximum: 1000,
  })
  @Optional()
  @IsInt()
  @Min(-1000)
  @Max(1000)
  priority?: number;

  @ApiPropertyOptional({
    description: 'Claims allowed before the job fails for good (default MAX_ATTEMPTS).',
    example: 3,
    minimum: LIMITS.maxAttempts.min,
    maximum: LIMITS.maxAttempts.max,
  })
  @Optional()
  @IsInt()
  @Min(LIMITS.maxAttempts.min)
  @Max(LIMITS.maxAttempts.max)
  maxAttempts?: number;

  @ApiPropertyOptional({
    description: 'ISO 8601 timestamp before which the job is not claimable (default now). Not with delayMs.',
    example: '2026-12-04T18:00:00.000Z',
  })
  @Optional()
  @IsISO8601({ strict: true, strictSeparator: true })
  runAt?: string;

  @ApiPropertyOptional({
    description: 'Delay from now before the job is claimable. Not with runAt.',
    example: 5000,
    minimum: 0,
  })
  @Optional()
  @IsInt()
  @Min(0)
  @Max(MAX_DELAY_MS)
  delayMs?: number;

  @ApiPropertyOptional({
    description: 'Makes creation idempotent: the same key with the same parameters returns the existing job (200).',
    example: 'nightly-eval-2026-12-04',
    minLength: 1,
    maxLength: 255,
  })
  @Optional()
  @IsString()
  @Length(1, 255)
  idempotencyKey?: string;
}
