import { type DynamicModule, Global, Module } from '@nestjs/common';
import { Clock, SystemClock } from './common/clock.js';
import { APP_CONFIG, type AppConfig } from './config/config.js';
import { DatabaseModule } from './database/database.module.js';
import { HealthController } from './health.controller.js';
import { JobsModule } from './jobs/jobs.module.js';

export interface AppOptions {
  /** Where time comes from; tests pass a clock they can move. */
  clock?: Clock;
  /** Nest log levels; tests keep only errors. */
  logger?: ('error' | 'warn' | 'log')[];
}

/** Holds what every module reads: the validated config and the clock. */
@Global()
@Module({})
class CoreModule {
  static forRoot(config: AppConfig, clock: Clock): DynamicModule {
    return {
      module: CoreModule,
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: Clock, useValue: clock },
      ],
      exports: [APP_CONFIG, Clock],
    };
  }
}

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, options: AppOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [CoreModule.forRoot(config, options.clock ?? new SystemClock()), DatabaseModule, JobsModule],
      controllers: [HealthController],
    };
  }
}
