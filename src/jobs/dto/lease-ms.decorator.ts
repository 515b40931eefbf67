import { Optional } from '../../common/optional.decorator.js';
import { applyDecorators } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, Max, Min } from 'class-validator';
import { LIMITS } from '../../config/config.js';

/** The optional `leaseMs` field of claims and heartbeats: a whole number of ms within LIMITS. */
export const LeaseMsField = (description: string) =>
  applyDecorators(
    ApiPropertyOptional({ description, example: 30000, minimum: LIMITS.leaseMs.min, maximum: LIMITS.leaseMs.max }),
    Optional(),
    IsInt(),
    Min(LIMITS.leaseMs.min),
    Max(LIMITS.leaseMs.max),
  );
