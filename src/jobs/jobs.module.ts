import { Module } from '@nestjs/common';
import { ClaimWaiters } from './claim-waiters.js';
import { JobsController } from './jobs.controller.js';
import { JobsService } from './jobs.service.js';
import { ReaperService } from './reaper.service.js';

@Module({
  controllers: [JobsController],
  providers: [JobsService, ReaperService, ClaimWaiters],
  exports: [JobsService, ReaperService],
})
export class JobsModule {}
