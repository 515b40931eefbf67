import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { buildDataSourceOptions } from './data-source-options.js';
import { sqliteDialect, type Dialect } from './dialect.js';
import { SerialTransactor, Transactor } from './transactions.js';

export const DIALECT = Symbol('DIALECT');

/** Opens the database (running pending migrations) and provides the unit-of-work runner. */
@Global()
@Module({
  providers: [
    {
      provide: DataSource,
      inject: [APP_CONFIG],
      useFactory: async (config: AppConfig) => new DataSource(buildDataSourceOptions(config.database)).initialize(),
    },
    { provide: DIALECT, useValue: sqliteDialect },
    {
      provide: Transactor,
      inject: [DataSource, DIALECT],
      useFactory: (dataSource: DataSource, dialect: Dialect) => new SerialTransactor(dataSource, dialect),
    },
  ],
  exports: [DataSource, DIALECT, Transactor],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(Transactor) private readonly transactor: Transactor,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    // Let in-flight units of work commit before the connection closes.
    await this.transactor.drain();
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
