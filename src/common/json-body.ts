import type { IncomingMessage } from 'node:http';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';

/**
 * Request bodies: JSON objects only, at most `maxBytes`. Installed before the routes, with an
 * error handler so that the body parser's own failures (malformed JSON, too large) come out in
 * the same `{statusCode, message, error}` shape as every other error.
 */
export function installJsonBody(app: NestExpressApplication, maxBytes: number): void {
  app.use(requireJsonContentType);
  app.useBodyParser('json', { limit: maxBytes, strict: true, type: isJson });
  app.use(requireObjectBody);
  app.use(bodyParserErrors(maxBytes));
}

function isJson(req: IncomingMessage): boolean {
  return /^application\/([\w.-]+\+)?json\s*(;|$)/i.test(req.headers['content-type'] ?? '');
}

function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function requireJsonContentType(req: Request, res: Response, next: NextFunction): void {
  if (hasBody(req) && !isJson(req)) {
    res.status(415).json({
      statusCode: 415,
      message: `Content-Type must be application/json, got ${req.headers['content-type'] ?? 'none'}`,
      error: 'Unsupported Media Type',
    });
    return;
  }
  next();
}

/** Deeper JSON is refused: validation, hashing and storage all walk the value recursively. */
const MAX_JSON_DEPTH = 64;

function requireObjectBody(req: Request, res: Response, next: NextFunction): void {
  // No body at all (an optional body left out) reads as an empty object.
  if (req.body === undefined) req.body = {};
  if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
    res.status(400).json({ statusCode: 400, message: 'Request body must be a JSON object', error: 'Bad Request' });
    return;
  }
  if (jsonDepth(req.body) > MAX_JSON_DEPTH) {
    res.status(400).json({
      statusCode: 400,
      message: `Request body is nested deeper than ${MAX_JSON_DEPTH} levels`,
      error: 'Bad Request',
    });
    return;
  }
  next();
}

/** Nesting depth of a parsed JSON value, measured without recursion (so any depth is safe). */
function jsonDepth(root: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (value === null || typeof value !== 'object') continue;
    deepest = Math.max(deepest, depth);
    if (deepest > MAX_JSON_DEPTH) return deepest;
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return deepest;
}

function bodyParserErrors(maxBytes: number) {
  return (
    error: { status?: number; type?: string; message?: string },
    _req: Request,
    res: Response,
    next: NextFunction,
  ) => {
    if (error.type === 'entity.too.large') {
      res.status(413).json({
        statusCode: 413,
        message: `Request body is larger than MAX_PAYLOAD_BYTES (${maxBytes} bytes)`,
        error: 'Payload Too Large',
      });
      return;
    }
    if (error.type === 'entity.parse.failed') {
      res.status(400).json({ statusCode: 400, message: `Malformed JSON: ${error.message}`, error: 'Bad Request' });
      return;
    }
    if (typeof error.status === 'number' && error.status >= 400 && error.status < 500) {
      const reason = error.status === 415 ? 'Unsupported Media Type' : 'Bad Request';
      res.status(error.status).json({ statusCode: error.status, message: error.message ?? reason, error: reason });
      return;
    }
    next(error);
  };
}
