/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): a request continues the caller's trace
 * when its `traceparent` is valid and starts a new one otherwise. Its log lines carry `trace_id` and
 * `span_id`, the calls made on its behalf send `traceparent` with its span as the parent (and the
 * caller's `tracestate` unchanged), and its answer carries `traceresponse` (Trace Context Level 2),
 * so that a caller who sent no `traceparent` learns the trace to look for in the logs.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import type { CallOrigin } from '../openapi/client.js';
import { takeRandom } from './random-pool.js';

/** A `traceparent` header's fields, as sent. */
export interface Traceparent {
  version: string;
  traceId: string;
  parentId: string;
  flags: string;
}

/** The trace one request belongs to, and its own span in it. */
export interface TraceContext {
  /** 32 lowercase hex digits: the caller's trace, or a new one. */
  traceId: string;
  /** 16 lowercase hex digits: this service's span for the request. */
  spanId: string;
  /** The caller's span (the incoming parent-id); absent when the request started the trace. */
  parentId?: string;
  /** `tracestate` as the caller sent it, forwarded only with a valid `traceparent`. */
  tracestate?: string;
  /** The version 00 `traceparent` for calls made on the request's behalf (this span as the parent); also the `traceresponse`. */
  traceparent: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's W3C trace context (continued from `traceparent`, or new). */
    trace: TraceContext;
  }
}

const VERSION_00 = /^(00)-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
// A later version may append fields after the flags; its first four fields keep their format.
const LATER_VERSION = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-|$)/;
const ALL_ZERO = /^0+$/;
const SAMPLED = 0x01;

/**
 * The fields of a valid `traceparent`, or undefined for anything the spec says to ignore: a missing
 * or repeated header, uppercase or non-hex digits, wrong lengths, version `ff`, a version 00 header
 * with anything after its flags, an all-zero trace-id or parent-id.
 */
export function parseTraceparent(header: string | string[] | undefined): Traceparent | undefined {
  if (typeof header !== 'string') return undefined;
  const match = header.startsWith('00-') ? VERSION_00.exec(header) : LATER_VERSION.exec(header);
  if (!match) return undefined;
  const [, version, traceId, parentId, flags] = match as unknown as [string, string, string, string, string];
  if (version === 'ff' || ALL_ZERO.test(traceId) || ALL_ZERO.test(parentId)) return undefined;
  return { version, traceId, parentId, flags };
}

/** A random id of `bytes` bytes in hex, never all zeros (which W3C Trace Context forbids). */
function randomHex(bytes: number): string {
  for (;;) {
    const hex = takeRandom(bytes).toString('hex');
    if (!ALL_ZERO.test(hex)) return hex;
  }
}

const formatFlags = (flags: number): string => flags.toString(16).padStart(2, '0');

/**
 * The trace of a request with these headers: the caller's, with a new span, when its `traceparent`
 * is valid; otherwise a new trace (its `tracestate`, if any, is dropped with it, as the spec says).
 * Only the sampled flag is defined by version 00, so only it is passed on; a new trace is sampled,
 * since every request is logged.
 */
export function traceOfHeaders(headers: IncomingHttpHeaders): TraceContext {
  const spanId = randomHex(8);
  const incoming = parseTraceparent(headers.traceparent);
  if (!incoming) {
    const traceId = randomHex(16);
    return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${formatFlags(SAMPLED)}` };
  }
  const flags = formatFlags(Number.parseInt(incoming.flags, 16) & SAMPLED);
  const trace: TraceContext = { traceId: incoming.traceId, spanId, parentId: incoming.parentId, traceparent: `00-${incoming.traceId}-${spanId}-${flags}` };
  const tracestate = headers.tracestate;
  if (typeof tracestate === 'string' && tracestate.length > 0) trace.tracestate = tracestate;
  return trace;
}

/** Keyed by the raw request: the logger factory runs before Fastify's request object exists. */
const traces = new WeakMap<object, TraceContext>();

function traceOfRaw(raw: { headers: IncomingHttpHeaders }): TraceContext {
  let trace = traces.get(raw);
  if (!trace) {
    trace = traceOfHeaders(raw.headers);
    traces.set(raw, trace);
  }
  return trace;
}

type Logger = PinoLogger;
type LevelName = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type LogMethod = (...args: unknown[]) => void;

/**
 * A request's logger that makes its pino child (bindings: the request id, trace_id and span_id) only
 * when a line at an enabled level is written: pino serialises a child's bindings when the child is
 * made, which cost more than the rest of a small read's logging when nothing is logged (LOG_LEVEL=warn
 * and a request that succeeds). Every line it writes is the child's, so each carries the trace.
 */
class RequestLogger {
  #child: Logger | undefined;
  readonly #parent: Logger;
  readonly #bindings: Record<string, unknown>;

  constructor(parent: Logger, bindings: Record<string, unknown>) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  get real(): Logger {
    this.#child ??= this.#parent.child(this.#bindings);
    return this.#child;
  }

  get level(): string {
    return (this.#child ?? this.#parent).level;
  }

  set level(level: string) {
    this.real.level = level;
  }

  #write(level: LevelName, args: unknown[]): void {
    const logger = this.#child ?? this.#parent;
    if (!logger.isLevelEnabled(level)) return;
    (this.real[level] as LogMethod)(...args);
  }

  fatal(...args: unknown[]): void {
    this.#write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.#write('error', args);
  }
  warn(...args: unknown[]): void {
    this.#write('warn', args);
  }
  info(...args: unknown[]): void {
    this.#write('info', args);
  }
  debug(...args: unknown[]): void {
    this.#write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.#write('trace', args);
  }
  silent(): void {}

  isLevelEnabled(level: string): boolean {
    return (this.#child ?? this.#parent).isLevelEnabled(level);
  }

  bindings(): Record<string, unknown> {
    return this.real.bindings();
  }

  child(bindings: Record<string, unknown>, options?: Parameters<Logger['child']>[1]): PinoLogger<string> {
    return this.real.child(bindings, options);
  }
}

/** Every request's child logger (so every request log line, from 'incoming request' on) carries the trace. */
const childLoggerWithTrace: FastifyInstance['childLoggerFactory'] = (logger, bindings, options, raw) => {
  const trace = traceOfRaw(raw);
  const withTrace = { ...bindings, trace_id: trace.traceId, span_id: trace.spanId };
  // A route's own log level (or serializers) makes a child whose levels differ from its parent's: made at once.
  // Only pino says which levels are enabled; any other logger (or none: Fastify's no-op) gets its child at once.
  if (Object.keys(options).length > 0 || typeof (logger as Partial<Logger>).isLevelEnabled !== 'function') return logger.child(withTrace, options);
  return new RequestLogger(logger as Logger, withTrace) as unknown as FastifyBaseLogger;
};

/** Call before any route is added: routes take the logger factory in force when they are declared. */
export function registerTraceContext(app: FastifyInstance): void {
  app.setChildLoggerFactory(childLoggerWithTrace);
  app.decorateRequest('trace', {
    getter(this: FastifyRequest) {
      return traceOfRaw(this.raw);
    },
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('traceresponse', request.trace.traceparent);
    done(null, payload);
  });
}

/** On whose behalf a call to another service is made: the request id and the trace, forwarded. */
export function callOrigin(request: FastifyRequest): CallOrigin {
  const { traceparent, tracestate } = request.trace;
  return { requestId: request.id, traceparent, tracestate };
}
