/**
 * `POST /holds/batch`: each item is answered exactly as `POST /holds` would answer its `hold` (the
 * same validation, domain call and problem+json mapping), and all of them run at once, so that on
 * SQLite the group commit puts them in one durable commit. Each item logs its own line with the
 * request id and trace of the purchase it belongs to.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { components, operations } from '../../openapi/generated/event-service.js';
import { specOperations } from '../../openapi/spec.js';
import { ValidationError } from '../../platform/errors.js';
import type { OperationHandler, OperationRequest } from '../../platform/openapi-routes.js';
import { problemOfError } from '../../platform/problem-handler.js';
import { traceOfHeaders } from '../../platform/trace-context.js';
import { bodyValidator } from '../../platform/validation.js';
import type { EventServiceContext } from '../domain/context.js';
import * as holdsDomain from '../domain/holds.js';
import { toApiHold } from '../domain/representation.js';

type BatchItem = components['schemas']['HoldBatchItem'];
type BatchResult = components['schemas']['HoldBatchResult'];
type BatchRequest = OperationRequest<operations['createHoldBatch']>;

/** Levels at which an info line is written. */
const INFO_LOGGED = new Set(['trace', 'debug', 'info']);

/** The body schema of `POST /holds`, as its route validates it. */
function singleHoldBodySchema(): Record<string, unknown> {
  const single = specOperations('event-service').find((o) => o.operation.operationId === 'createHold');
  const schema = single?.operation.requestBody?.content['application/json']?.schema;
  if (!schema) throw new Error('the event-service spec has no body for createHold');
  return schema;
}

export function createHoldBatchHandler(context: EventServiceContext): OperationHandler<operations['createHoldBatch']> {
  const validateHold = bodyValidator(singleHoldBodySchema());

  /** The item's own logger: its request id and its trace (a span of its own), as a single call's request logger has. */
  const itemLogger = (request: BatchRequest, item: BatchItem): FastifyBaseLogger => {
    const trace = traceOfHeaders({ traceparent: item.traceparent, tracestate: item.tracestate });
    return request.server.log.child({ request_id: item.request_id ?? randomUUID(), trace_id: trace.traceId, span_id: trace.spanId });
  };

  const answerItem = async (request: BatchRequest, reply: FastifyReply, item: BatchItem, index: number): Promise<BatchResult> => {
    let log: FastifyBaseLogger | undefined;
    let result: BatchResult;
    try {
      const errors = validateHold(item.hold);
      if (errors.length > 0) throw new ValidationError(errors);
      const { hold, created } = await holdsDomain.createHold(context, item.hold);
      result = { status: created ? 201 : 200, hold: toApiHold(hold) };
    } catch (error) {
      log = itemLogger(request, item);
      const { problem } = problemOfError(error, log);
      // Its type is one of the spec's problem kinds (platform/errors.ts PROBLEM_KINDS).
      result = { status: problem.status, problem: problem as NonNullable<BatchResult['problem']> };
    }
    // Built only when it is written: at LOG_LEVEL=warn an item costs no log work.
    if (INFO_LOGGED.has(request.server.log.level)) {
      log ??= itemLogger(request, item);
      log.info({ batch_request_id: request.id, item: index, hold_id: item.hold.hold_id, res: { statusCode: result.status }, responseTime: reply.elapsedTime }, 'batched hold completed');
    }
    return result;
  };

  return async (request, reply) => {
    const results = await Promise.all(request.body.holds.map((item, index) => answerItem(request, reply, item, index)));
    return { status: 200, body: { results } };
  };
}
