/**
 * Builds the Fastify routes of a service from its OpenAPI document: validation and serialisation
 * schemas come from the spec (not retyped), access rules from each operation's `security`, and
 * every operation must have exactly one handler (a missing or extra handler fails at start-up).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, RouteOptions } from 'fastify';
import type { Json, ResponsesOf, SuccessCode } from '../openapi/client.js';
import { specOperations, type JsonSchema, type ServiceName, type SpecOperation } from '../openapi/spec.js';
import { accessRule, authenticate, knownTokens, type Principal, type Tokens } from './auth.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Polled routinely by another service: request lines at debug. */
    routine?: boolean;
  }
  interface FastifyRequest {
    principal: Principal;
    /** True when the caller may act on a ticket only by showing its reference. */
    needsReference: boolean;
    operationId: string;
  }
}


/** What a handler answers: one of the operation's success responses, typed from the generated spec types. */
export type OperationReply<Op> = {
  [C in keyof ResponsesOf<Op> & SuccessCode]: { status: C; body: Json<ResponsesOf<Op>[C]>; headers?: Record<string, string> };
}[keyof ResponsesOf<Op> & SuccessCode];

type BodyOf<Op> = Op extends { requestBody: { content: { 'application/json': infer B } } }
  ? B
  : Op extends { requestBody?: { content: { 'application/json': infer B } } }
    ? B | undefined
    : undefined;
type ParamsOf<Op, In extends 'path' | 'query' | 'header'> = Op extends { parameters: { [K in In]?: infer P } }
  ? [P] extends [never] ? Record<string, never> : NonNullable<P>
  : Record<string, never>;

export type OperationRequest<Op> = FastifyRequest<{
  Body: BodyOf<Op>;
  Params: ParamsOf<Op, 'path'>;
  Querystring: ParamsOf<Op, 'query'>;
  Headers: ParamsOf<Op, 'header'>;
}>;

export type OperationHandler<Op> = (request: OperationRequest<Op>, reply: FastifyReply) => Promise<OperationReply<Op>>;

export type OperationHandlers<Ops> = { [K in keyof Ops]: OperationHandler<Ops[K]> };

function objectSchema(parameters: SpecOperation['operation']['parameters'], location: string, lowerCase = false): JsonSchema {
  const selected = (parameters ?? []).filter((p) => p.in === location);
  const name = (n: string) => (lowerCase ? n.toLowerCase() : n);
  return {
    type: 'object',
    properties: Object.fromEntries(selected.map((p) => [name(p.name), p.schema])),
    required: selected.filter((p) => p.required).map((p) => name(p.name)),
  };
}

const declares = (operation: SpecOperation['operation'], location: string): boolean => (operation.parameters ?? []).some((p) => p.in === location);

/** Marks a part of a body that the handler validates item by item (`POST /holds/batch`: one bad hold is that item's 400). */
const PER_ITEM_VALIDATION = 'x-per-item-validation';

/** The schema with each part marked for per-item validation accepting anything: the route checks only the envelope. */
function envelopeOnly(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(envelopeOnly);
  if (node === null || typeof node !== 'object') return node;
  if ((node as Record<string, unknown>)[PER_ITEM_VALIDATION] === true) return {};
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, envelopeOnly(value)]));
}

export function fastifySchema({ operation }: SpecOperation): FastifySchema {
  // Every operation has a query schema: an unknown query parameter is refused like an unknown body field.
  const schema: FastifySchema = { querystring: { ...objectSchema(operation.parameters, 'query'), additionalProperties: false } };
  if (declares(operation, 'path')) schema.params = objectSchema(operation.parameters, 'path');
  if (declares(operation, 'header')) schema.headers = objectSchema(operation.parameters, 'header', true);
  const declared = operation.requestBody?.content['application/json']?.schema;
  const body = declared && (envelopeOnly(declared) as JsonSchema);
  // An optional body may be left out (Fastify validates a missing body as null).
  if (body) schema.body = operation.requestBody?.required === true ? body : { if: { type: 'null' }, else: body };
  const response: Record<string, unknown> = {};
  for (const [code, answer] of Object.entries(operation.responses)) {
    const json = answer.content?.['application/json']?.schema;
    if (code.startsWith('2') && json) response[code] = { content: { 'application/json': { schema: json } } };
  }
  if (Object.keys(response).length > 0) schema.response = response;
  return schema;
}

export const fastifyPath = (specPath: string): string => specPath.replace(/\{(\w+)\}/g, ':$1');

export interface RegisterOptions<Ops> {
  service: ServiceName;
  handlers: OperationHandlers<Ops>;
  tokens: Tokens;
  /** Extra route options per operation (rate limits on public writes). */
  routeOptions?: (operation: SpecOperation) => Partial<RouteOptions>;
  /** Operations other services poll routinely: their request lines are logged at debug, not info. */
  routine?: ReadonlySet<string>;
  /** Awaited before a GET answers (or fails): what it read is durable by then (see GroupCommitter.settled). */
  readBarrier?: () => Promise<void>;
}

export function registerOperations<Ops>(app: FastifyInstance, options: RegisterOptions<Ops>): void {
  const operations = specOperations(options.service);
  const handlers = options.handlers as Record<string, OperationHandler<unknown> | undefined>;
  const specIds = new Set(operations.map((o) => o.operation.operationId));
  const extra = Object.keys(handlers).filter((id) => !specIds.has(id));
  const missing = [...specIds].filter((id) => !handlers[id]);
  if (extra.length > 0 || missing.length > 0) {
    throw new Error(`${options.service} handlers do not match the spec: missing ${missing.join(', ') || 'none'}; not in spec ${extra.join(', ') || 'none'}`);
  }
  const tokens = knownTokens(options.tokens);
  app.decorateRequest('principal', 'anonymous');
  app.decorateRequest('needsReference', false);
  app.decorateRequest('operationId', '');
  for (const spec of operations) {
    const handler = handlers[spec.operation.operationId] as OperationHandler<unknown>;
    const rule = accessRule(spec.operation.security);
    const operationId = spec.operation.operationId;
    const barrier = spec.method === 'get' ? options.readBarrier : undefined;
    const extra = options.routeOptions?.(spec) ?? {};
    app.route({
      method: spec.method.toUpperCase() as RouteOptions['method'],
      url: fastifyPath(spec.path),
      schema: fastifySchema(spec),
      ...extra,
      config: { ...extra.config, routine: options.routine?.has(operationId) === true },
      onRequest: async (request: FastifyRequest) => {
        request.operationId = operationId;
        const access = authenticate(request, rule, tokens);
        request.principal = access.principal;
        request.needsReference = access.needsReference;
      },
      handler: async (request, reply) => {
        let answer;
        try {
          answer = await handler(request as OperationRequest<unknown>, reply);
        } finally {
          if (barrier) await barrier();
        }
        const { status, body, headers } = answer as { status: number; body: unknown; headers?: Record<string, string> };
        if (headers) reply.headers(headers);
        reply.code(status);
        return status === 204 ? reply.send() : reply.send(body);
      },
    });
  }
}
