/** The one place where errors become RFC 9457 problem+json answers. No stack traces, no SQL. */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyError, FastifyInstance } from 'fastify';
import type { ErrorObject } from 'ajv/dist/2020.js';
import { ProblemError, StoredProblemError, UnavailableError, ValidationError, type ProblemBody, problemType, PROBLEM_KINDS, type ProblemKind } from './errors.js';
import { isConnectionLost } from './store/postgres/errors.js';
import { fieldErrors } from './validation.js';

const FASTIFY_CODES: Record<string, ProblemKind> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload-too-large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported-media-type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed-body',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed-body',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'malformed-body',
  FST_ERR_CTP_INVALID_PARSE_TYPE: 'unsupported-media-type',
};

const STATUS_KINDS: Record<number, ProblemKind> = {
  400: 'malformed-body',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not-found',
  409: 'conflict',
  412: 'precondition-failed',
  413: 'payload-too-large',
  415: 'unsupported-media-type',
  429: 'rate-limited',
  503: 'unavailable',
};

export function toProblem(error: FastifyError | Error): ProblemBody {
  if (error instanceof ProblemError) return error.toBody();
  const fastifyError = error as FastifyError & { validationContext?: string };
  if (fastifyError.validation) {
    const errors = fieldErrors(fastifyError.validation as unknown as ErrorObject[], fastifyError.validationContext ?? 'body');
    return new ValidationError(errors).toBody();
  }
  const kind = (fastifyError.code && FASTIFY_CODES[fastifyError.code]) || undefined;
  const status = fastifyError.statusCode;
  if (kind) return { type: problemType(kind), title: PROBLEM_KINDS[kind].title, status: PROBLEM_KINDS[kind].status, detail: error.message };
  if (error instanceof SyntaxError && status === 400) {
    return { type: problemType('malformed-body'), title: PROBLEM_KINDS['malformed-body'].title, status: 400, detail: 'The body is not valid JSON.' };
  }
  if (status && status >= 400 && status < 500) {
    const byStatus = STATUS_KINDS[status] ?? 'malformed-body';
    return { type: problemType(byStatus), title: PROBLEM_KINDS[byStatus].title, status, detail: error.message };
  }
  return { type: problemType('internal'), title: PROBLEM_KINDS.internal.title, status: 500, detail: 'An unexpected error occurred; it has been logged.' };
}

/** A database connection lost mid-request (PostgreSQL ended or dropped it): a 503 to retry, never a 500. */
function lostConnection(error: unknown): UnavailableError | undefined {
  return !(error instanceof ProblemError) && isConnectionLost(error) ? new UnavailableError('The database connection was lost; try again.') : undefined;
}

/**
 * The problem+json body an error answers, logged as a request's error is logged: the error handler's
 * mapping, also used for each item of a batch (`POST /holds/batch`), which answers its own problem.
 */
export function problemOfError(raised: unknown, log: FastifyBaseLogger): { problem: ProblemBody; error: unknown } {
  const lost = lostConnection(raised);
  const error = lost ?? raised;
  const problem = toProblem(error as FastifyError);
  if (lost) log.warn({ err: raised }, 'the database connection was lost');
  else if (problem.status >= 500 && !(error instanceof ProblemError)) log.error({ err: error }, 'unhandled error');
  else if (problem.status >= 500) log.warn({ problem: problem.type, detail: problem.detail }, 'dependency problem');
  return { problem, error };
}

export function registerProblemHandler(app: FastifyInstance): void {
  app.setErrorHandler((raised, request, reply) => {
    const { problem, error } = problemOfError(raised, request.log);
    if (error instanceof StoredProblemError) reply.headers(error.headers);
    const retryAfter = (error as ProblemError).extensions?.retry_after;
    if (typeof retryAfter === 'number') reply.header('retry-after', String(Math.ceil(retryAfter)));
    return reply.code(problem.status).type('application/problem+json').send(problem);
  });
  app.setNotFoundHandler((request, reply) => {
    const problem: ProblemBody = {
      type: problemType('not-found'),
      title: PROBLEM_KINDS['not-found'].title,
      status: 404,
      detail: `No route for ${request.method} ${request.url.split('?')[0]}.`,
    };
    return reply.code(404).type('application/problem+json').send(problem);
  });
}

/** Node's parser errors that have their own status; any other one is a malformed request. */
const CLIENT_ERROR_KINDS: Record<string, ProblemKind> = {
  HPE_HEADER_OVERFLOW: 'headers-too-large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'payload-too-large',
  ERR_HTTP_REQUEST_TIMEOUT: 'request-timeout',
};

const CLIENT_ERROR_DETAILS: Partial<Record<ProblemKind, string>> = {
  'headers-too-large': 'The request headers are larger than the server accepts.',
  'payload-too-large': 'A chunk extension is larger than the server accepts.',
  'request-timeout': 'The request was not received in time.',
};

/**
 * Fastify's `clientErrorHandler`: a request Node could not parse (a bad request line, headers too
 * large) never reaches a route, so the problem+json answer is written on the socket here, and the
 * connection is closed because the rest of its bytes cannot be trusted.
 */
export function writeClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const kind = (error.code && CLIENT_ERROR_KINDS[error.code]) || 'malformed-request';
  const { status, title } = PROBLEM_KINDS[kind];
  const detail = CLIENT_ERROR_DETAILS[kind] ?? 'The request is not valid HTTP/1.1.';
  const body = JSON.stringify({ type: problemType(kind), title, status, detail } satisfies ProblemBody);
  const head = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? title}`, 'Content-Type: application/problem+json', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close'];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`, () => socket.destroy());
}
