// Applies the @nestjs/swagger CLI plugin (as `nest build` does with nest-cli.json) inside ts-jest,
// so the app under test documents its DTOs exactly as the built server does.
const plugin = require('@nestjs/swagger/plugin');

module.exports.name = 'nestjs-swagger-transformer';
module.exports.version = 1;
module.exports.factory = (compilerInstance) =>
  plugin.before(
    { introspectComments: true, classValidatorShim: true, dtoFileNameSuffix: ['.dto.ts'] },
    compilerInstance.program,
  );
