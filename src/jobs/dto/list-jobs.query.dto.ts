import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Length, Matches, Max, Min } from 'class-validator';
import { JOB_STATUSES, type JobStatus } from '../job-state.js';
import { QUEUE_PATTERN } from './create-job.dto.js';

/** Query strings are text: accept only plain decimal integers, leave anything else to fail @IsInt. */
const toInteger = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^-?\d{1,15}$/.test(value) ? Number(value) : value;

export class ListJobsQueryDto {
  @ApiPropertyOptional({ enum: JOB_STATUSES, example: 'queued' })
  @IsOptional()
  @IsIn(JOB_STATUSES, { message: `status must be one of: ${JOB_STATUSES.join(', ')}` })
  status?: JobStatus;

  @ApiPropertyOptional({ example: 'gpu' })
  @IsOptional()
  @IsString()
  @Matches(QUEUE_PATTERN, { message: 'queue must match [A-Za-z0-9_.:-]{1,64}' })
  queue?: string;

  @ApiPropertyOptional({ example: 'train-resnet50' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  name?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 50, example: 50 })
  @IsOptional()
  @Transform(toInteger)
  @IsInt({ message: 'limit must be an integer from 1 to 500' })
  @Min(1, { message: 'limit must be an integer from 1 to 500' })
  @Max(500, { message: 'limit must be an integer from 1 to 500' })
  limit?: number;

  @ApiPropertyOptional({ description: "Opaque cursor from the previous page's nextCursor." })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  cursor?: string;
}
