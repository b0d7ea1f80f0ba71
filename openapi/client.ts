/**
 * A thin typed HTTP client over a service's contract: operation ids, parameters, bodies and answers
 * are typed by the types openapi-typescript generates from the spec; requests go over an undici
 * keep-alive pool (its `request` is several times cheaper than `fetch`). Used by ticket-service to
 * call event-service and by the CLI to call both.
 */
import { BalancedPool, Pool } from 'undici';
import { callBudget } from './abort-switch.js';
import { specOperations, type ServiceName } from './spec.js';
import type { operations as EventOperations } from './generated/event-service.js';
import type { operations as TicketOperations } from './generated/ticket-service.js';

export type { EventOperations, TicketOperations };

/** The body type of a response (JSON, or text/plain), as the generated spec types give it. */
export type Json<T> = T extends { content: { 'application/json': infer B } } ? B : T extends { content: { 'text/plain': infer B } } ? B : undefined;
export type ResponsesOf<Op> = Op extends { responses: infer R } ? R : never;
export type SuccessCode = 200 | 201 | 202 | 204;
type ParamsOf<Op, In extends 'path' | 'query' | 'header'> = Op extends { parameters: { [K in In]?: infer P } } ? ([NonNullable<P>] extends [never] ? never : P) : never;
type BodyOf<Op> = Op extends { requestBody: { content: { 'application/json': infer B } } } ? B : never;

/** What a call takes: only the parts the operation has. */
export type CallInput<Op> = ([ParamsOf<Op, 'path'>] extends [never] ? object : { path: NonNullable<ParamsOf<Op, 'path'>> }) &
  ([ParamsOf<Op, 'query'>] extends [never] ? object : { query?: NonNullable<ParamsOf<Op, 'query'>> }) &
  ([BodyOf<Op>] extends [never] ? object : { body: BodyOf<Op> }) & {
    headers?: Record<string, string>;
  };

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: Array<{ pointer: string; detail: string }>;
  [extension: string]: unknown;
}

export type CallResult<Op> =
  | {
      [C in keyof ResponsesOf<Op> & SuccessCode]: { ok: true; status: C; body: Json<ResponsesOf<Op>[C]>; headers: Record<string, string | string[] | undefined> };
    }[keyof ResponsesOf<Op> & SuccessCode]
  | { ok: false; status: number; problem: Problem; headers: Record<string, string | string[] | undefined> };

/** The service did not answer in time, refused the connection, or answered something that is not HTTP JSON. */
export class ServiceUnreachableError extends Error {
  /** True when the service took too long (it may have acted); false when it could not be reached or answered nonsense. */
  readonly timedOut: boolean;
  constructor(
    readonly service: string,
    detail: string,
    options?: { cause?: unknown; timedOut?: boolean },
  ) {
    super(`${service} is unreachable: ${detail}`, options);
    this.name = 'ServiceUnreachableError';
    this.timedOut = options?.timedOut ?? false;
  }
}

export interface ClientOptions {
  baseUrl: string;
  /** Bearer token sent with every call. */
  token?: string | undefined;
  /** Budget for one call, connect and answer included. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  connections?: number;
  /** Sees every answer (the tests check each one against the contract). */
  observe?: (answer: { operationId: string; method: string; path: string; status: number; contentType: string | undefined; text: string }) => void;
}

/** On whose behalf a call is made: forwarded so that both services' logs share the request id and the trace. */
export interface CallOrigin {
  /** Forwarded as `x-request-id`. */
  requestId?: string | undefined;
  /** W3C `traceparent`, the caller's span as the parent. */
  traceparent?: string | undefined;
  /** W3C `tracestate`, as the caller received it. */
  tracestate?: string | undefined;
}

export interface CallOptions extends CallOrigin {
  timeoutMs?: number;
  /** Aborts the call early (a service shutting down stops its background calls). */
  signal?: AbortSignal | undefined;
}

export class ServiceClient<Ops> {
  private readonly pool: Pool | BalancedPool;
  private readonly basePath: string;
  private readonly routes: Map<string, { method: string; path: string }>;
  /** The budget of a call that names none. */
  protected readonly timeoutMs: number;

  constructor(
    readonly service: ServiceName,
    private readonly options: ClientOptions,
  ) {
    // Several comma-separated URLs are replicas of one service (same path), balanced by undici.
    const urls = options.baseUrl.split(',').map((url) => new URL(url.trim()));
    const first = urls[0] as URL;
    this.basePath = first.pathname.replace(/\/$/, '');
    this.timeoutMs = options.timeoutMs ?? 5000;
    const poolOptions = {
      connections: options.connections ?? 128,
      connectTimeout: options.connectTimeoutMs ?? Math.min(this.timeoutMs, 2000),
      keepAliveTimeout: 30_000,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    };
    this.pool = urls.length > 1 ? new BalancedPool(urls.map((url) => url.origin), poolOptions) : new Pool(first.origin, poolOptions);
    this.routes = new Map(specOperations(service).map((o) => [o.operation.operationId, { method: o.method.toUpperCase(), path: o.path }]));
  }

  get baseUrl(): string {
    return this.options.baseUrl;
  }

  async call<K extends keyof Ops & string>(operationId: K, input: CallInput<Ops[K]>, options: CallOptions = {}): Promise<CallResult<Ops[K]>> {
    const route = this.routes.get(operationId);
    if (!route) throw new Error(`${this.service} has no operation ${operationId}`);
    const parts = input as { path?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown; headers?: Record<string, string> };
    let path = route.path.replace(/\{(\w+)\}/g, (_match, name: string) => encodeURIComponent(String(parts.path?.[name])));
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(parts.query ?? {})) if (value !== undefined) search.set(name, String(value));
    if (search.size > 0) path += `?${search.toString()}`;
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json, text/plain;q=0.5', ...parts.headers };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (options.requestId) headers['x-request-id'] = options.requestId;
    if (options.traceparent) headers.traceparent = options.traceparent;
    if (options.tracestate) headers.tracestate = options.tracestate;
    let payload: string | undefined;
    if (parts.body !== undefined) {
      payload = JSON.stringify(parts.body);
      headers['content-type'] = 'application/json';
    }
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    // One budget for the whole call (openapi/abort-switch.ts: AbortSignal.timeout and an AbortController cost several times more per call).
    const budget = callBudget(timeoutMs, () => new DOMException(`no answer in ${timeoutMs} ms`, 'TimeoutError'), options.signal);
    let response;
    let text: string;
    try {
      response = await this.pool.request({
        method: route.method as 'GET',
        path: this.basePath + path,
        headers,
        body: payload,
        signal: budget.switch,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      text = await response.body.text();
    } catch (error) {
      throw unreachableError(this.service, error);
    } finally {
      budget.end();
    }
    const responseHeaders = response.headers as Record<string, string | string[] | undefined>;
    this.options.observe?.({ operationId, method: route.method, path, status: response.statusCode, contentType: responseHeaders['content-type'] as string | undefined, text });
    let body: unknown = undefined;
    const plainText = String(responseHeaders['content-type'] ?? '').startsWith('text/plain');
    if (plainText && response.statusCode >= 200 && response.statusCode < 300) body = text;
    else if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        throw new ServiceUnreachableError(this.service, `answered ${response.statusCode} with a body that is not JSON`);
      }
    }
    if (response.statusCode >= 200 && response.statusCode < 300) {
      return { ok: true, status: response.statusCode, body, headers: responseHeaders } as CallResult<Ops[K]>;
    }
    const problem = (body && typeof body === 'object' ? body : { type: 'about:blank', title: `HTTP ${response.statusCode}`, status: response.statusCode }) as Problem;
    return { ok: false, status: response.statusCode, problem, headers: responseHeaders };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

const NO_ANSWER = 'no answer in time';

/** What a call that got no answer throws: the network error (or the abort's reason), described. */
export function unreachableError(service: string, error: unknown): ServiceUnreachableError {
  const detail = describeNetworkError(error);
  return new ServiceUnreachableError(service, detail, { cause: error, timedOut: detail === NO_ANSWER });
}

function describeNetworkError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: string }).code;
    if (error.name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return NO_ANSWER;
    if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connection timed out';
    if (code === 'ECONNREFUSED') return 'connection refused';
    return code ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

export const eventServiceClient = (options: ClientOptions) => new ServiceClient<EventOperations>('event-service', options);
export const ticketServiceClient = (options: ClientOptions) => new ServiceClient<TicketOperations>('ticket-service', options);

/** The `rel="next"` URL of a `Link` header, if any. */
export function nextLink(headers: Record<string, string | string[] | undefined>): string | undefined {
  const link = headers.link;
  const text = Array.isArray(link) ? link.join(', ') : link;
  return text ? /<([^>]+)>;\s*rel="next"/.exec(text)?.[1] : undefined;
}

/** The cursor of the `rel="next"` page, to pass as `query.cursor`. */
export function nextCursor(headers: Record<string, string | string[] | undefined>): string | undefined {
  const next = nextLink(headers);
  return next ? (new URL(next).searchParams.get('cursor') ?? undefined) : undefined;
}
