import 'reflect-metadata';
import { ConfigError, loadConfig, type AppConfig } from './config/config.js';

function configOrExit(): AppConfig {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
}

async function bootstrap(): Promise<void> {
  // Validate first: a bad value is refused before the app (and its database) is even loaded.
  const config = configOrExit();
  const { createApp } = await import('./app.setup.js');
  const { Logger } = await import('@nestjs/common');
  const app = await createApp(config);
  await app.listen(config.port, config.host);
  const where = config.database.kind === 'sqlite' ? `SQLite ${config.database.path}` : 'PostgreSQL';
  new Logger('Bootstrap').log(
    `Serving on http://${config.host}:${config.port} (docs at /docs), storing jobs in ${where}`,
  );
}

bootstrap().catch((error: unknown) => {
  console.error(`Start-up failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
