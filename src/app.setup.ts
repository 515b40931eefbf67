import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppModule, type AppOptions } from './app.module.js';
import { DomainExceptionFilter } from './common/domain-exception.filter.js';
import { installJsonBody } from './common/json-body.js';
import { StrictValidationPipe } from './common/strict-validation.pipe.js';
import type { AppConfig } from './config/config.js';

/**
 * Builds the application exactly as it serves: main.ts calls this, and so do the e2e tests, so
 * the pipes, filter, body limits and docs under test are the production ones.
 */
export async function createApp(config: AppConfig, options: AppOptions = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, options), {
    bodyParser: false,
    // Let a start-up failure reach the caller (main.ts prints one clear line and exits 1).
    abortOnError: false,
    logger: options.logger ?? ['error', 'warn', 'log'],
  });
  installJsonBody(app, config.maxPayloadBytes);
  app.useGlobalPipes(new StrictValidationPipe());
  app.useGlobalFilters(new DomainExceptionFilter());
  app.enableShutdownHooks();

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Compute Orchestrator')
      .setDescription(
        'A durable job queue over HTTP. Producers POST jobs; workers claim them with a lease, heartbeat, ' +
          'and report the outcome with the lease token. See the README for the state machine and guarantees.',
      )
      .setVersion('0.1.0')
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  return app;
}
