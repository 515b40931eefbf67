import { type ArgumentMetadata, ValidationPipe } from '@nestjs/common';

/**
 * Validates every body and query against its DTO (unknown fields, wrong types and nulls are a
 * 400), then hands the handler the value as it was parsed. Nest's ValidationPipe would hand back
 * a class-transformer copy, rebuilt key by key, which drops payload keys such as "toString" or
 * "valueOf". Nothing is lost by skipping the copy: with forbidNonWhitelisted an unknown field is
 * refused, never stripped. (Nest still removes `__proto__`, `constructor` and `prototype` keys
 * from request JSON before validating: a guard against prototype pollution that we keep.)
 */
export class StrictValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: false,
      // Types are strict: "5" is not a number.
      transformOptions: { enableImplicitConversion: false },
      stopAtFirstError: false,
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    await super.transform(value, metadata);
    return value;
  }
}
