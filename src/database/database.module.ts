import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { buildDataSourceOptions } from './data-source-options.js';
import { postgresDialect, sqliteDialect, type Dialect } from './dialect.js';
import { runMigrations } from './migrate.js';
import { LocalReadySignal, PostgresReadySignal, ReadySignal } from './ready-signal.js';
import { PooledTransactor, SerialTransactor, Transactor } from './transactions.js';

export const DIALECT = Symbol('DIALECT');

/**
 * Opens the database (running pending migrations) and provides the unit-of-work runner and the
 * ready signal for the configured database: the only place that chooses between SQLite and
 * PostgreSQL.
 */
@Global()
@Module({
  providers: [
    {
      provide: DataSource,
      inject: [APP_CONFIG],
      useFactory: async (config: AppConfig) => {
        const dataSource = await new DataSource(buildDataSourceOptions(config.database)).initialize();
        await runMigrations(dataSource);
        return dataSource;
      },
    },
    {
      provide: DIALECT,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => (config.database.kind === 'postgres' ? postgresDialect : sqliteDialect),
    },
    {
      provide: Transactor,
      inject: [DataSource, DIALECT],
      useFactory: (dataSource: DataSource, dialect: Dialect) =>
        dialect.kind === 'postgres'
          ? new PooledTransactor(dataSource, dialect)
          : new SerialTransactor(dataSource, dialect),
    },
    {
      provide: ReadySignal,
      inject: [APP_CONFIG],
      useFactory: async (config: AppConfig) => {
        if (config.database.kind !== 'postgres') return new LocalReadySignal();
        const signal = new PostgresReadySignal(config.database.url, config.database.schema);
        await signal.listen();
        return signal;
      },
    },
  ],
  exports: [DataSource, DIALECT, Transactor, ReadySignal],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(Transactor) private readonly transactor: Transactor,
    @Inject(ReadySignal) private readonly readySignal: ReadySignal,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.readySignal.close();
    // Let in-flight units of work commit before the connections close.
    await this.transactor.drain();
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
