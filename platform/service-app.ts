/**
 * The Fastify instance every service starts from: structured logs with a `service` field and request
 * ids, spec-driven validation, problem+json errors, CORS limited to known origins, Swagger UI over the
 * hand-written spec, and rate limits on public writes.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { loadSpec, type OpenApiDocument, type ServiceName, type SpecOperation } from '../openapi/spec.js';
import { createValidatorCompiler } from './validation.js';
import { registerProblemHandler, writeClientError } from './problem-handler.js';
import { ProblemError } from './errors.js';
import { accessRule } from './auth.js';
import { localUrl } from './config.js';
import { registerTraceContext } from './trace-context.js';

export interface ServiceAppOptions {
  service: ServiceName;
  logLevel: string;
  /** Pretty, prefixed lines for a person at a terminal; JSON otherwise. */
  prettyLogs?: boolean;
  bodyLimit: number;
  corsOrigins: string[];
  host: string;
  port: number;
  rateLimitWritesPerMinute: number;
  /** Other specs the Swagger UI page can switch to. */
  otherSpecs?: Array<{ name: string; url: string }>;
}

/** A request other services make routinely (reconciler polls): logged at debug instead of info. */
const isRoutine = (request: FastifyRequest): boolean => request.routeOptions.config.routine === true;

export function loggerOptions(service: ServiceName, level: string, pretty: boolean): FastifyServerOptions['logger'] {
  if (level === 'silent') return false;
  return {
    level,
    base: { service, pid: process.pid },
    redact: ['req.headers.authorization', 'req.headers["x-ticket-reference"]'],
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { messageFormat: `[${service}] {msg}`, ignore: 'pid,hostname,service', translateTime: 'HH:MM:ss.l' } } }
      : {}),
  };
}

const METHODS_WITHOUT_BODY = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS']);

export function createServiceApp(options: ServiceAppOptions): FastifyInstance {
  const app = Fastify({
    logger: loggerOptions(options.service, options.logLevel, options.prettyLogs ?? false),
    requestIdHeader: 'x-request-id',
    logController: new LogController({
      requestIdLogLabel: 'request_id',
      disableRequestLogging: (request) => request.url === '/health' || request.url === '/ready' || isRoutine(request),
    }),
    genReqId: () => randomUUID(),
    bodyLimit: options.bodyLimit,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    clientErrorHandler: writeClientError,
  });
  registerTraceContext(app);
  app.setValidatorCompiler(createValidatorCompiler());
  // Only JSON bodies: anything else is 415, never parsed into a string.
  app.removeContentTypeParser('text/plain');
  // Fastify's parser (with its prototype-poisoning checks), except that an empty body on a method
  // that has none (a DELETE sent with a JSON content type) is no body rather than malformed JSON.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body: string, done) => {
    if (body.length === 0 && METHODS_WITHOUT_BODY.has(request.method)) done(null, undefined);
    else parseJson(request, body, done);
  });
  registerProblemHandler(app);
  // While shutting down, answers close their connection, so that keep-alive clients do not hold the process open.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onResponse', async (request, reply) => {
    if (isRoutine(request)) request.log.debug({ req: { method: request.method, url: request.url }, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime }, 'routine request completed');
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (closing) reply.header('connection', 'close');
  });

  app.register(cors, {
    origin: options.corsOrigins,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'],
    exposedHeaders: ['Link', 'X-Total-Count', 'ETag', 'Location', 'X-Request-Id', 'Traceresponse', 'Idempotent-Replayed'],
  });
  app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) =>
      new ProblemError('rate-limited', `At most ${context.max} writes per minute; retry in ${Math.ceil(context.ttl / 1000)} seconds.`, { retry_after: context.ttl / 1000 }),
  });

  const servedSpec = (): OpenApiDocument => {
    const spec = loadSpec(options.service);
    const address = app.server.address() as AddressInfo | null;
    const port = options.port === 0 && address ? address.port : options.port;
    spec.servers = [{ url: localUrl(options.host, port), description: `This ${options.service}` }];
    return spec;
  };
  app.register(swagger, { mode: 'static', specification: { document: loadSpec(options.service) as never } });
  app.register(swaggerUi, {
    routePrefix: '/docs',
    theme: { title: `EventSync ${options.service} — API and web console` },
    uiConfig: {
      docExpansion: 'list',
      deepLinking: true,
      displayRequestDuration: true,
      tryItOutEnabled: true,
      persistAuthorization: true,
      ...(options.otherSpecs
        ? { urls: [{ name: options.service, url: '/openapi.json' }, ...options.otherSpecs], 'urls.primaryName': options.service }
        : {}),
    },
    transformSpecification: () => servedSpec(),
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => servedSpec());
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/docs'));
  return app;
}

/**
 * Route options for a spec operation: writes open to anonymous callers are rate limited per client
 * when a limit is configured (service-to-service calls never are).
 */
export function writeRateLimit(limitPerMinute: number): (operation: SpecOperation) => Record<string, unknown> {
  return ({ method, operation }) =>
    limitPerMinute > 0 && method !== 'get' && accessRule(operation.security).anonymous ? { config: { rateLimit: { max: limitPerMinute, timeWindow: 60_000 } } } : {};
}

/**
 * The database could not make committed changes durable (a failed fsync): like PostgreSQL's PANIC,
 * the service stops at once rather than answer from a state that may not survive, and SQLite
 * recovers from its WAL when the service is started again.
 */
export function stopOnLostDurability(app: FastifyInstance, error: unknown): void {
  app.log.fatal({ err: error }, 'committed changes could not be made durable; stopping (a restart recovers from the WAL)');
  setImmediate(() => process.exit(1));
}
