import { Optional } from '../../common/optional.decorator.js';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Allow, IsBoolean, IsIn, IsString, Length, MaxLength } from 'class-validator';
import { LeaseMsField } from './lease-ms.decorator.js';
import { JOB_STATUSES, type JobStatus } from '../job-state.js';

export class ChangeStatusDto {
  @ApiProperty({ enum: JOB_STATUSES, example: 'succeeded', description: 'The status asked for.' })
  @IsIn(JOB_STATUSES, { message: `status must be one of: ${JOB_STATUSES.join(', ')}` })
  status!: JobStatus;

  @ApiPropertyOptional({
    description: 'Output of the job (any JSON), with `succeeded` only.',
    example: { accuracy: 0.761 },
  })
  @Allow()
  result?: unknown;

  @ApiPropertyOptional({ description: 'Why the attempt failed, with `failed` only.', example: 'CUDA out of memory' })
  @Optional()
  @IsString()
  @MaxLength(10_000)
  error?: string;

  @ApiPropertyOptional({
    description: 'With `failed`: false fails the job for good even if attempts remain.',
    default: true,
  })
  @Optional()
  @IsBoolean()
  retry?: boolean;

  @ApiPropertyOptional({
    description: 'The lease token from the claim. Without it the change is an operator action on any running lease.',
    example: '3f0c8a4e9b2d4c1e8f7a6b5c4d3e2f10',
  })
  @Optional()
  @IsString()
  @Length(1, 200)
  leaseToken?: string;

  @ApiPropertyOptional({ description: 'With `running`: the claiming worker.', example: 'gpu-node-7' })
  @Optional()
  @IsString()
  @Length(1, 200)
  workerId?: string;

  @LeaseMsField('With `running`: lease length (default LEASE_MS).')
  leaseMs?: number;
}
