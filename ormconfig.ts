import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadConfig } from './src/config/config.js';
import { buildDataSourceOptions } from './src/database/data-source-options.js';

/** The DataSource the TypeORM CLI uses (`npx typeorm migration:show -d dist/ormconfig.js`). */
export default new DataSource(buildDataSourceOptions(loadConfig().database));
