import { Optional } from '../../common/optional.decorator.js';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsInt, IsString, Length, Matches, Max, Min } from 'class-validator';
import { LeaseMsField } from './lease-ms.decorator.js';
import { MAX_WAIT_MS } from '../claim-waiters.js';
import { QUEUE_PATTERN } from './create-job.dto.js';

export class ClaimJobDto {
  @ApiPropertyOptional({ description: 'Who claims; stored as lockedBy.', example: 'gpu-node-7' })
  @Optional()
  @IsString()
  @Length(1, 200)
  workerId?: string;

  @ApiPropertyOptional({
    description: 'Claim only from these queues (all queues when absent).',
    example: ['gpu'],
    type: [String],
  })
  @Optional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @IsString({ each: true })
  @Matches(QUEUE_PATTERN, { each: true, message: 'each queue must match [A-Za-z0-9_.:-]{1,64}' })
  queues?: string[];

  @LeaseMsField('Lease length (default LEASE_MS).')
  leaseMs?: number;

  @ApiPropertyOptional({
    description:
      'Long-poll: when nothing is claimable, wait up to this long for a job to become claimable (default 0). ' +
      'The claim returns as soon as one is; 204 when the wait runs out.',
    example: 20000,
    minimum: 0,
    maximum: MAX_WAIT_MS,
  })
  @Optional()
  @IsInt()
  @Min(0)
  @Max(MAX_WAIT_MS)
  waitMs?: number;
}
