import { ApiProperty, ApiPropertyOptional, OmitType } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsInt,
  IsObject,
  IsString,
  Length,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { ChangeStatusDto } from './change-status.dto.js';
import { ClaimJobDto } from './claim-job.dto.js';
import { CreateJobDto } from './create-job.dto.js';
import { JobResponseDto, LeasedJobResponseDto } from './job.response.dto.js';

export const MAX_CREATE_BATCH = 1000;
export const MAX_CLAIM_BATCH = 100;
export const MAX_STATUS_BATCH = 100;
/** The largest id a request may name (15 digits: exact as a JavaScript number). */
export const MAX_JOB_ID = 999_999_999_999_999;

export class CreateJobsBatchDto {
  @ApiProperty({ type: [CreateJobDto], minItems: 1, maxItems: MAX_CREATE_BATCH })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_CREATE_BATCH)
  // Each item must itself be an object: ValidateNested alone would descend into a nested array.
  @IsObject({ each: true, message: 'each item of jobs must be an object' })
  @ValidateNested({ each: true })
  @Type(() => CreateJobDto)
  jobs!: CreateJobDto[];
}

export class JobsBatchResponseDto {
  @ApiProperty({ type: [JobResponseDto] })
  jobs!: JobResponseDto[];
}

export class ClaimJobsBatchDto extends ClaimJobDto {
  @ApiProperty({ description: 'Most jobs to claim.', example: 10, minimum: 1, maximum: MAX_CLAIM_BATCH })
  @IsInt()
  @Min(1)
  @Max(MAX_CLAIM_BATCH)
  limit!: number;
}

export class LeasedJobsBatchResponseDto {
  @ApiProperty({ type: [LeasedJobResponseDto] })
  jobs!: LeasedJobResponseDto[];
}

/** One item of PATCH /jobs/status/batch: a worker's outcome for a job it holds the lease on. */
export class StatusUpdateDto extends OmitType(ChangeStatusDto, ['leaseToken', 'workerId', 'leaseMs'] as const) {
  @ApiProperty({ example: 42, minimum: 1, maximum: MAX_JOB_ID })
  @IsInt()
  @Min(1)
  @Max(MAX_JOB_ID)
  id!: number;

  @ApiProperty({ description: 'The lease token from the claim.', example: '3f0c8a4e9b2d4c1e8f7a6b5c4d3e2f10' })
  @IsString()
  @Length(1, 200)
  leaseToken!: string;
}

export class StatusUpdatesBatchDto {
  @ApiProperty({ type: [StatusUpdateDto], minItems: 1, maxItems: MAX_STATUS_BATCH })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_STATUS_BATCH)
  @IsObject({ each: true, message: 'each item of updates must be an object' })
  @ValidateNested({ each: true })
  @Type(() => StatusUpdateDto)
  updates!: StatusUpdateDto[];
}

export class StatusUpdateResultDto {
  @ApiProperty({ example: 42 }) id!: number;
  @ApiProperty({ example: 200, description: 'What PATCH /jobs/:id/status would have answered.' }) statusCode!: number;
  @ApiPropertyOptional({ type: JobResponseDto, description: 'The job after the transition (2xx).' })
  job?: JobResponseDto;
  @ApiPropertyOptional({ example: 'Lease on job 42 is lost: the job is cancelled', description: 'Why not (4xx).' })
  message?: string;
}

export class StatusUpdatesBatchResponseDto {
  @ApiProperty({ type: [StatusUpdateResultDto] })
  results!: StatusUpdateResultDto[];
}
