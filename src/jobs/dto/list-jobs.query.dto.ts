import { Optional } from '../../common/optional.decorator.js';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsString, Length, Matches } from 'class-validator';
import { JOB_STATUSES, type JobStatus } from '../job-state.js';
import { QUEUE_PATTERN } from './create-job.dto.js';

export class ListJobsQueryDto {
  @ApiPropertyOptional({ enum: JOB_STATUSES, example: 'queued' })
  @Optional()
  @IsIn(JOB_STATUSES, { message: `status must be one of: ${JOB_STATUSES.join(', ')}` })
  status?: JobStatus;

  @ApiPropertyOptional({ example: 'gpu' })
  @Optional()
  @IsString()
  @Matches(QUEUE_PATTERN, { message: 'queue must match [A-Za-z0-9_.:-]{1,64}' })
  queue?: string;

  @ApiPropertyOptional({ example: 'train-resnet50' })
  @Optional()
  @IsString()
  @Length(1, 200)
  name?: string;

  /** Query strings are text: a plain decimal integer from 1 to 500. */
  @ApiPropertyOptional({ type: Number, minimum: 1, maximum: 500, default: 50, example: 50 })
  @Optional()
  @IsString({ message: 'limit must be an integer from 1 to 500' })
  @Matches(/^([1-9]|[1-9]\d|[1-4]\d\d|500)$/, { message: 'limit must be an integer from 1 to 500' })
  limit?: string;

  @ApiPropertyOptional({ description: "Opaque cursor from the previous page's nextCursor." })
  @Optional()
  @IsString()
  @Length(1, 200)
  cursor?: string;
}
