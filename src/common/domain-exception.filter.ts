import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { DomainError } from '../jobs/job.errors.js';

/** The HTTP status for each domain error code; the services never speak HTTP themselves. */
const STATUS_BY_CODE: Record<string, HttpStatus> = {
  JOB_NOT_FOUND: HttpStatus.NOT_FOUND,
  INVALID_TRANSITION: HttpStatus.CONFLICT,
  JOB_NOT_DUE: HttpStatus.CONFLICT,
  LEASE_LOST: HttpStatus.CONFLICT,
  IDEMPOTENCY_CONFLICT: HttpStatus.CONFLICT,
  INVALID_REQUEST: HttpStatus.BAD_REQUEST,
};

/** The HTTP status a domain error answers with (also used for the items of batch responses). */
export function httpStatusOf(error: DomainError): HttpStatus {
  return STATUS_BY_CODE[error.code] ?? HttpStatus.INTERNAL_SERVER_ERROR;
}

const REASON: Partial<Record<HttpStatus, string>> = {
  [HttpStatus.BAD_REQUEST]: 'Bad Request',
  [HttpStatus.NOT_FOUND]: 'Not Found',
  [HttpStatus.CONFLICT]: 'Conflict',
  [HttpStatus.INTERNAL_SERVER_ERROR]: 'Internal Server Error',
};

/**
 * The one place errors become responses, all in Nest's `{statusCode, message, error}` shape:
 * domain errors by code, Nest's own HttpExceptions as they are, and anything else as a 500
 * that is logged (a bug, never the caller's input).
 */
@Catch()
export class DomainExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    if (exception instanceof DomainError) {
      const status = httpStatusOf(exception);
      response.status(status).json({ statusCode: status, message: exception.message, error: REASON[status] });
      return;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      response
        .status(status)
        .json(typeof body === 'string' ? { statusCode: status, message: body, error: exception.name } : body);
      return;
    }
    this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    const status = HttpStatus.INTERNAL_SERVER_ERROR;
    response.status(status).json({ statusCode: status, message: 'Internal server error', error: REASON[status] });
  }
}
