/**
 * The event-service client ticket-service uses, with its hold calls coalesced: callers still call
 * `createHold` one hold at a time and get the answer a `POST /holds` gives, but the holds asked for
 * in the same turn of the event loop go to event-service together, as one `POST /holds/batch`
 * (split at its item limit), sent on the next turn (`setImmediate`): a purchase never waits for a
 * batch to fill. One hold alone goes as a plain `POST /holds`. Under concurrency this saves the
 * HTTP and routing work of all but one request on both sides, and on SQLite event-service commits
 * the batch's holds in one durable commit.
 */
import {
  ServiceClient,
  ServiceUnreachableError,
  unreachableError,
  type CallInput,
  type CallOptions,
  type CallResult,
  type ClientOptions,
  type EventOperations,
} from './client.js';
import type { components } from './generated/event-service.js';

type CreateHold = EventOperations['createHold'];
type HoldAnswer = CallResult<CreateHold>;
type BatchItem = components['schemas']['HoldBatchItem'];
type BatchResult = components['schemas']['HoldBatchResult'];
type Headers = Record<string, string | string[] | undefined>;

/** The most holds one `POST /holds/batch` carries (the spec's `maxItems`). */
export const HOLD_BATCH_LIMIT = 100;

/** After an event-service without the batch route (404 or 405: an older version), holds go one by one for this long. */
const SINGLE_CALLS_AFTER_REFUSAL_MS = 60_000;

interface Waiter {
  input: CallInput<CreateHold>;
  options: CallOptions;
  resolve: (answer: HoldAnswer) => void;
  reject: (error: unknown) => void;
  /** Stops watching the caller's signal and deadline. */
  unwatch?: () => void;
  done: boolean;
}

class HoldBatchingClient extends ServiceClient<EventOperations> {
  private pending: Waiter[] = [];
  private singleCallsUntil = 0;

  constructor(options: ClientOptions) {
    super('event-service', options);
  }

  override call<K extends keyof EventOperations & string>(operationId: K, input: CallInput<EventOperations[K]>, options: CallOptions = {}): Promise<CallResult<EventOperations[K]>> {
    if (operationId !== 'createHold') return super.call(operationId, input, options);
    // K is 'createHold' here; the checker cannot narrow a type parameter by a comparison.
    return this.queueHold(input as CallInput<CreateHold>, options) as unknown as Promise<CallResult<EventOperations[K]>>;
  }

  private single(input: CallInput<CreateHold>, options: CallOptions): Promise<HoldAnswer> {
    return super.call('createHold', input, options);
  }

  private queueHold(input: CallInput<CreateHold>, options: CallOptions): Promise<HoldAnswer> {
    // Extra headers cannot ride in a batch item; an aborted call fails at once, as it would alone.
    if (input.headers !== undefined || options.signal?.aborted || Date.now() < this.singleCallsUntil) return this.single(input, options);
    return new Promise<HoldAnswer>((resolve, reject) => {
      this.pending.push({ input, options, resolve, reject, done: false });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const waiters: Waiter[] = [];
    for (const waiter of this.pending) {
      // A call aborted while it waited fails alone, at once, as it would have.
      if (waiter.options.signal?.aborted) this.sendAlone(waiter);
      else waiters.push(waiter);
    }
    this.pending = [];
    for (let start = 0; start < waiters.length; start += HOLD_BATCH_LIMIT) void this.send(waiters.slice(start, start + HOLD_BATCH_LIMIT));
  }

  private sendAlone(waiter: Waiter): void {
    this.single(waiter.input, waiter.options).then(
      (answer) => finish(waiter, () => waiter.resolve(answer)),
      (error: unknown) => finish(waiter, () => waiter.reject(error)),
    );
  }

  private async send(waiters: Waiter[]): Promise<void> {
    const [first] = waiters;
    if (waiters.length === 1 && first) return this.sendAlone(first);
    const timeoutMs = Math.max(...waiters.map((waiter) => waiter.options.timeoutMs ?? this.timeoutMs));
    for (const waiter of waiters) watch(waiter, this.service, this.timeoutMs, timeoutMs);
    let answer: CallResult<EventOperations['createHoldBatch']>;
    try {
      answer = await super.call('createHoldBatch', { body: { holds: waiters.map(batchItem) } }, { timeoutMs });
    } catch (error) {
      // No answer: every hold fails as its single call would have (it may or may not have been taken).
      for (const waiter of waiters) finish(waiter, () => waiter.reject(error));
      return;
    }
    if (answer.ok) {
      const { results } = answer.body;
      if (results.length !== waiters.length) {
        const error = new ServiceUnreachableError(this.service, `answered ${results.length} results to a batch of ${waiters.length} holds`);
        for (const waiter of waiters) finish(waiter, () => waiter.reject(error));
        return;
      }
      waiters.forEach((waiter, index) => finish(waiter, () => waiter.resolve(holdAnswer(results[index] as BatchResult, answer.headers))));
      return;
    }
    // Not taken as a batch, so nothing of it was done: larger than its body limit (in halves, then),
    // no such route (an older event-service), or a body it would not take whole (one by one, then).
    const open = waiters.filter((waiter) => !waiter.done);
    if (answer.status === 413) {
      const half = Math.ceil(open.length / 2);
      for (const part of [open.slice(0, half), open.slice(half)]) if (part.length > 0) void this.send(part);
      return;
    }
    if (answer.status === 404 || answer.status === 405 || answer.status === 400) {
      if (answer.status !== 400) this.singleCallsUntil = Date.now() + SINGLE_CALLS_AFTER_REFUSAL_MS;
      for (const waiter of open) this.sendAlone(waiter);
      return;
    }
    // Refused whole (a token it does not take, shutting down): the answer each single call would have had.
    const refusal: HoldAnswer = { ok: false, status: answer.status, problem: answer.problem, headers: answer.headers };
    for (const waiter of waiters) finish(waiter, () => waiter.resolve(refusal));
  }
}

/** What a single `POST /holds` would have sent, as an item: the hold, and the origin its headers would have carried. */
function batchItem(waiter: Waiter): BatchItem {
  const item: BatchItem = { hold: waiter.input.body };
  const { requestId, traceparent, tracestate } = waiter.options;
  if (requestId !== undefined) item.request_id = requestId;
  if (traceparent !== undefined) item.traceparent = traceparent;
  if (tracestate !== undefined) item.tracestate = tracestate;
  return item;
}

/** One item's result as the answer of a single call (the headers are the batch answer's). */
function holdAnswer(result: BatchResult, headers: Headers): HoldAnswer {
  if ((result.status === 200 || result.status === 201) && result.hold) return { ok: true, status: result.status, body: result.hold, headers };
  const problem = result.problem ?? { type: 'about:blank', title: `HTTP ${result.status}`, status: result.status };
  return { ok: false, status: result.status, problem, headers };
}

/**
 * A caller's own signal and a deadline shorter than the batch's still end its call alone, with the
 * error its single call would have thrown; the batch goes on for the others.
 */
function watch(waiter: Waiter, service: string, defaultTimeoutMs: number, batchTimeoutMs: number): void {
  if (waiter.unwatch) return; // already watched (a batch sent again in halves)
  const { signal } = waiter.options;
  const ownTimeoutMs = waiter.options.timeoutMs ?? defaultTimeoutMs;
  if (!signal && ownTimeoutMs >= batchTimeoutMs) return;
  const abandon = () => finish(waiter, () => waiter.reject(unreachableError(service, signal?.reason)));
  signal?.addEventListener('abort', abandon, { once: true });
  const timer =
    ownTimeoutMs < batchTimeoutMs
      ? setTimeout(() => finish(waiter, () => waiter.reject(unreachableError(service, new DOMException(`no answer in ${ownTimeoutMs} ms`, 'TimeoutError')))), ownTimeoutMs)
      : undefined;
  waiter.unwatch = () => {
    signal?.removeEventListener('abort', abandon);
    if (timer) clearTimeout(timer);
  };
}

function finish(waiter: Waiter, settle: () => void): void {
  if (waiter.done) return;
  waiter.done = true;
  waiter.unwatch?.();
  settle();
}

/** The event-service client for ticket-service: every `createHold` call coalesced as above. */
export const holdBatchingEventServiceClient = (options: ClientOptions): ServiceClient<EventOperations> => new HoldBatchingClient(options);
