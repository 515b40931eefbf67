import { Module } from '@nestjs/common';
import { JobsController } from './jobs.controller.js';
import { JobsService } from './jobs.service.js';
import { ReaperService } from './reaper.service.js';

@Module({
  controllers: [JobsController],
  providers: [JobsService, ReaperService],
  exports: [JobsService, ReaperService],
})
export class JobsModule {}
