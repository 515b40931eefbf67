import { BadRequestException, createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { ApiParam } from '@nestjs/swagger';
import type { Request } from 'express';

export function parseJobId(value: string): number {
  if (!/^[1-9]\d{0,14}$/.test(value)) {
    throw new BadRequestException(`Job id must be a positive integer, got "${value}"`);
  }
  return Number(value);
}

/**
 * The `:id` path parameter as a job id: a positive decimal integer that fits a JavaScript number
 * exactly. A parameter decorator rather than a pipe on `@Param`, because the global
 * ValidationPipe would first coerce the text with Number() ("1e3" -> 1000, "abc" -> NaN).
 */
export const JobIdParam = createParamDecorator((_data: unknown, context: ExecutionContext): number =>
  parseJobId(String(context.switchToHttp().getRequest<Request>().params.id)),
);

/** Swagger description of the `:id` path parameter. */
export const ApiJobIdParam = () =>
  ApiParam({ name: 'id', schema: { type: 'integer', minimum: 1 }, description: 'Job id.', example: 42 });
