import { Controller, Get, Logger, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { JobsService } from './jobs/jobs.service.js';

@ApiTags('health')
@Controller('health')
export class HealthController {
  private readonly logger = new Logger(HealthController.name);

  constructor(private readonly jobs: JobsService) {}

  @Get()
  @ApiOperation({ summary: 'Whether the database answers' })
  @ApiOkResponse({ description: '{"status":"ok"}' })
  @ApiServiceUnavailableResponse({ description: '{"status":"unavailable"} when the database does not answer.' })
  async check(@Res() res: Response): Promise<void> {
    try {
      await this.jobs.checkHealth();
      res.status(200).json({ status: 'ok' });
    } catch (error) {
      // The cause goes to the log, not to whoever asks.
      this.logger.error(`Health check failed: ${error instanceof Error ? error.message : String(error)}`);
      res.status(503).json({ status: 'unavailable' });
    }
  }
}
