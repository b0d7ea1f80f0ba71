/**
 * Delivers webhook events, in every replica at once and safely so:
 * - fan-out: event rows not yet fanned out become one delivery per subscription enabled now (created
 *   before the event, wanting its type); the unique (event, subscription) key makes a second replica's
 *   fan-out of the same event a no-op;
 * - attempts: due deliveries (`status = 'pending' AND next_attempt_at <= now`, unleased) are claimed
 *   with a lease (a conditional update each, never a row lock held across the call), a few per
 *   endpoint at a time; a delivered attempt claims its endpoint's next due delivery as it is recorded
 *   (`mayChain`). Each is POSTed with undici: signed afresh each attempt as Standard Webhooks says
 *   (webhooks-signing.ts: the same `webhook-id` every time; both secrets sign during a rotation), one timeout for the
 *   whole attempt, redirects not followed, the address checked at connect time;
 * - retries with exponential backoff and jitter until `retry_until`, then `failed`; an endpoint to
 *   which every attempt failed for WEBHOOK_RETRY_HOURS is disabled at its next failed attempt;
 * - on shutdown, attempts in flight are aborted and their leases given back: they stay due.
 * Attempts run beside the loop, never inside a purchase: a slow receiver costs only its own slots.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { callBudget } from '../../openapi/abort-switch.js';
import { webhookPrivateUrlsAllowed } from '../../platform/config.js';
import * as store from '../store/webhooks.js';
import type { TicketServiceContext } from './context.js';
import { checkedLookup, urlRefusal } from './webhooks-safety.js';
import { signatures } from './webhooks-signing.js';
import { retryUntil } from './webhooks.js';

/** Attempts in flight in all, per process, at least (WEBHOOK_CONCURRENCY, per endpoint, may raise it: see the constructor). */
const TOTAL_CONCURRENCY = 64;
const FAN_OUT_BATCH = 200;
/** Batches a round fans out at most: with deliveries chained, rounds run less often under load, and fan-out must keep up. */
const FAN_OUT_BATCHES = 10;
/** Bytes of an answer read (and at most 200 characters kept): a receiver's body is not stored. */
const ANSWER_BYTES = 4096;
const EXCERPT_CHARACTERS = 200;
const MAX_BACKOFF_MS = 6 * 3600_000;

declare module 'fastify' {
  interface FastifyInstance {
    /** ticket-service's webhook dispatcher (its `reports` feed metrics). */
    webhookDispatcher: WebhookDispatcher;
  }
}

type AttemptOutcome = 'delivered' | 'retrying' | 'failed' | 'aborted';

/** What the dispatcher reports after each attempt (the hook for metrics). */
export interface AttemptReport {
  outcome: AttemptOutcome;
  subscriptionId: number;
  statusCode: number | null;
  durationMs: number;
}

interface AttemptResult {
  statusCode: number | null;
  excerpt: string | null;
  error: string | null;
}

/** The delay before retry number `attempts` (1 = the first retry): base × 3^(n−1), ±20 % jitter, capped at 6 hours. */
function backoffMs(baseSeconds: number, attempts: number): number {
  const plain = Math.min(MAX_BACKOFF_MS, baseSeconds * 1000 * 3 ** Math.max(0, attempts - 1));
  return Math.round(plain * (0.8 + Math.random() * 0.4));
}

async function readExcerpt(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    chunks.push(buffer);
    size += buffer.length;
    if (size >= ANSWER_BYTES) break;
  }
  body.destroy();
  return Buffer.concat(chunks).toString('utf8').slice(0, EXCERPT_CHARACTERS);
}

function describeError(error: unknown, timeoutMs: number, timedOut: boolean): string {
  if (timedOut) return `no answer in ${timeoutMs / 1000} s`;
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return (typeof code === 'string' && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message).slice(0, 300);
  }
  return String(cause).slice(0, 300);
}

export class WebhookDispatcher {
  private readonly inFlight = new Map<number, number>();
  private readonly attempts = new Set<Promise<void>>();
  private round: Promise<void> | undefined;
  private again = false;
  private lastHousekeeping = 0;
  private readonly agent: Agent;
  private readonly allowPrivate: boolean;
  /** Attempts in flight to one endpoint (WEBHOOK_CONCURRENCY), and in all. */
  private readonly endpointConcurrency: number;
  private readonly totalConcurrency: number;
  /** Told about every attempt's outcome (metrics hook up here). */
  readonly reports: Array<(report: AttemptReport) => void> = [];

  constructor(private readonly context: TicketServiceContext) {
    this.allowPrivate = webhookPrivateUrlsAllowed(context.config);
    this.endpointConcurrency = context.config.WEBHOOK_CONCURRENCY;
    // Room for four endpoints at their limit: a busy endpoint's chain (mayChain) stops short of the total.
    this.totalConcurrency = Math.max(TOTAL_CONCURRENCY, 4 * this.endpointConcurrency);
    const timeout = context.config.WEBHOOK_TIMEOUT_SECONDS * 1000;
    this.agent = new Agent({
      connect: { timeout, ...(this.allowPrivate ? {} : { lookup: checkedLookup }) },
      // The dispatcher keeps each endpoint to its limit; undici only to the total, so endpoints that share a
      // host never wait for one another's connections.
      connections: this.totalConcurrency,
      keepAliveTimeout: 10_000,
    });
  }

  /** Runs a round now, or right after the one running. */
  tick(): void {
    if (this.context.stopping.aborted) return;
    if (this.round) {
      this.again = true;
      return;
    }
    this.round = this.runRound()
      .catch((error: unknown) => {
        if (!this.context.stopping.aborted) this.context.log.error({ err: error }, 'webhook dispatch round failed; it runs again next tick');
      })
      .finally(() => {
        this.round = undefined;
        if (this.again) {
          this.again = false;
          this.tick();
        }
      });
  }

  /** After the service stopped accepting work: waits for the round and the (aborted) attempts, then closes the agent. */
  async close(): Promise<void> {
    await this.round;
    // An attempt that claimed its endpoint's next delivery just before the stop starts that one as it
    // ends (aborted at once, its lease given back): wait for those too.
    while (this.attempts.size > 0) await Promise.allSettled([...this.attempts]);
    await this.agent.close();
  }

  private async runRound(): Promise<void> {
    await this.fanOut();
    // Expired subscriptions and old log rows go every 10 s (sooner with a short SWEEP_INTERVAL_SECONDS, as in tests).
    if (Date.now() - this.lastHousekeeping >= Math.min(10_000, this.context.config.SWEEP_INTERVAL_SECONDS * 5000)) {
      this.lastHousekeeping = Date.now();
      await this.housekeeping();
    }
    await this.startDueAttempts();
  }

  /** Fans out what is waiting, a batch at a time (at most FAN_OUT_BATCHES a round, so that a round stays short). */
  private async fanOut(): Promise<void> {
    for (let batch = 0; batch < FAN_OUT_BATCHES && !this.context.stopping.aborted; batch += 1) {
      if ((await this.fanOutBatch()) < FAN_OUT_BATCH) return;
    }
  }

  /** One batch of events fanned out; how many events it took. */
  private async fanOutBatch(): Promise<number> {
    const { db, write } = this.context;
    const events = await store.eventsToFanOut(db, FAN_OUT_BATCH);
    if (events.length === 0) return 0;
    const now = new Date();
    await write(async (trx) => {
      const at = now.toISOString();
      const subscriptions = (await store.activeSubscriptions(trx, at)).map((subscription) => ({ ...subscription, wanted: new Set(JSON.parse(subscription.events) as string[]) }));
      const rows: store.NewDelivery[] = [];
      for (const event of events) {
        for (const subscription of subscriptions) {
          if (subscription.created_at > event.created_at || !(subscription.wanted.has('*') || subscription.wanted.has(event.type))) continue;
          rows.push({ event_id: event.id, subscription_id: subscription.id, next_attempt_at: at, retry_until: retryUntil(this.context, Date.parse(event.created_at)), created_at: at });
        }
      }
      for (let i = 0; i < rows.length; i += 50) await store.insertDeliveries(trx, rows.slice(i, i + 50));
      await store.markFannedOut(trx, events.map((event) => event.id));
    });
    return events.length;
  }

  private async housekeeping(): Promise<void> {
    const now = Date.now();
    const before = new Date(now - this.context.config.WEBHOOK_RETENTION_DAYS * 86_400_000).toISOString();
    await this.context.write(async (trx) => {
      await store.deleteExpiredSubscriptions(trx, new Date(now).toISOString());
      await store.deleteFinishedDeliveries(trx, before);
      // An event with no delivery left (or none at all: nobody was subscribed) is kept an hour at most,
      // so the outbox stays small however many tickets change.
      await store.deleteSpentEvents(trx, new Date(now - Math.min(this.context.config.WEBHOOK_RETENTION_DAYS * 86_400_000, 3600_000)).toISOString());
    });
  }

  private async startDueAttempts(): Promise<void> {
    const free = this.totalConcurrency - this.attempts.size;
    if (free <= 0) return;
    const saturated = [...this.inFlight].filter(([, count]) => count >= this.endpointConcurrency).map(([id]) => id);
    const now = new Date().toISOString();
    const due = await store.dueDeliveries(this.context.db, now, free, saturated);
    // Within the endpoints' limits (several due deliveries may share one endpoint).
    const planned = new Map(this.inFlight);
    const wanted = due.filter((delivery) => {
      const running = planned.get(delivery.subscription_id) ?? 0;
      if (running >= this.endpointConcurrency) return false;
      planned.set(delivery.subscription_id, running + 1);
      return true;
    });
    if (wanted.length === 0 || this.context.stopping.aborted) return;
    const lease = this.leaseFromNow();
    // One change claims them all (each by its own conditional update: another replica may win some).
    const claimed = await this.context.write(async (trx) => {
      const won: store.DueDelivery[] = [];
      for (const delivery of wanted) if (await store.claimDelivery(trx, delivery.id, now, lease)) won.push(delivery);
      return won;
    });
    for (const delivery of claimed) this.start(delivery, lease);
  }

  /** The lease of a claim made now: longer than any attempt, so a lease that lapses means its dispatcher is gone. */
  private leaseFromNow(): string {
    return new Date(Date.now() + this.context.config.WEBHOOK_TIMEOUT_SECONDS * 2000 + 10_000).toISOString();
  }

  /**
   * Runs one claimed delivery's attempt in one of the endpoint's slots. When the attempt claimed the
   * endpoint's next due delivery as it finished, that one takes the slot over; otherwise the slot is
   * free and a round runs (the next due delivery, of any endpoint, need not wait for the timer).
   */
  private start(delivery: store.DueDelivery, lease: string): void {
    this.inFlight.set(delivery.subscription_id, (this.inFlight.get(delivery.subscription_id) ?? 0) + 1);
    let chained = false;
    const attempt: Promise<void> = this.attempt(delivery, lease)
      .then((next) => {
        if (!next) return;
        chained = true;
        this.start(next.delivery, next.lease);
      })
      .catch((error: unknown) => this.context.log.error({ err: error, delivery: delivery.id }, 'webhook attempt failed unexpectedly; it is retried once its lease lapses'))
      .finally(() => {
        this.attempts.delete(attempt);
        const left = (this.inFlight.get(delivery.subscription_id) ?? 1) - 1;
        if (left > 0) this.inFlight.set(delivery.subscription_id, left);
        else this.inFlight.delete(delivery.subscription_id);
        if (!chained) this.tick();
      });
    this.attempts.add(attempt);
  }

  /**
   * After a delivered attempt, its endpoint's next due delivery is claimed in the same change that
   * records it, sparing a whole round (a fan-out read, a read of the due deliveries and a claim) per
   * delivery to a healthy endpoint under load. Not when shutting down, and not when the slots of all
   * endpoints are nearly taken: a busy endpoint then gives its slot back to the round, which shares
   * the slots out, so it cannot starve the others.
   */
  private mayChain(): boolean {
    return !this.context.stopping.aborted && this.attempts.size < this.totalConcurrency - this.endpointConcurrency;
  }

  private async post(delivery: store.DueDelivery): Promise<AttemptResult | 'aborted'> {
    const refusal = urlRefusal(delivery.url, this.allowPrivate);
    if (refusal) return { statusCode: null, excerpt: null, error: `the URL ${refusal}` };
    const timeoutMs = this.context.config.WEBHOOK_TIMEOUT_SECONDS * 1000;
    const timestamp = new Date();
    const secrets = [delivery.secret];
    if (delivery.previous_secret && delivery.previous_secret_until && delivery.previous_secret_until > timestamp.toISOString()) secrets.push(delivery.previous_secret);
    // One budget for the whole attempt, pulled by its timer or by shutdown.
    const budget = callBudget(timeoutMs, () => new Error(`no answer in ${timeoutMs} ms`), this.context.stopping);
    try {
      const answer = await request(delivery.url, {
        method: 'POST',
        dispatcher: this.agent,
        signal: budget.switch,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'EventSync-Webhooks/1',
          'webhook-id': delivery.message_id,
          'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
          'webhook-signature': signatures(secrets, delivery.message_id, timestamp, delivery.payload),
        },
        body: delivery.payload,
      });
      const excerpt = await readExcerpt(answer.body);
      return { statusCode: answer.statusCode, excerpt, error: null };
    } catch (error) {
      if (this.context.stopping.aborted) return 'aborted';
      return { statusCode: null, excerpt: null, error: describeError(error, timeoutMs, budget.timedOut()) };
    } finally {
      budget.end();
    }
  }

  /** One attempt, recorded; the endpoint's next due delivery if it was claimed on the way (see `mayChain`). */
  private async attempt(delivery: store.DueDelivery, lease: string): Promise<{ delivery: store.DueDelivery; lease: string } | undefined> {
    const started = Date.now();
    const result = await this.post(delivery);
    if (result === 'aborted') {
      // Shutting down: the lease is given back and the delivery stays due, its attempts unchanged.
      await this.context.write((trx) => store.finishAttempt(trx, delivery.id, lease, undefined));
      this.report({ outcome: 'aborted', subscriptionId: delivery.subscription_id, statusCode: null, durationMs: Date.now() - started });
      return undefined;
    }
    const now = new Date();
    const at = now.toISOString();
    const attempts = delivery.attempts + 1;
    const delivered = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
    const next = new Date(now.getTime() + backoffMs(this.context.config.WEBHOOK_RETRY_BASE_SECONDS, attempts)).toISOString();
    const outcome: AttemptOutcome = delivered ? 'delivered' : next > delivery.retry_until ? 'failed' : 'retrying';
    const firstAttemptAt = delivery.first_attempt_at ?? at;
    // A failing streak that began by then (WEBHOOK_RETRY_HOURS ago) disables the endpoint.
    const disableBefore = new Date(now.getTime() - this.context.config.WEBHOOK_RETRY_HOURS * 3600_000).toISOString();
    let disabled = false;
    const nextLease = this.leaseFromNow();
    const chained = await this.context.write(async (trx) => {
      const recorded = await store.finishAttempt(trx, delivery.id, lease, {
        status: outcome === 'retrying' ? 'pending' : outcome === 'delivered' ? 'delivered' : 'failed',
        attempts,
        first_attempt_at: firstAttemptAt,
        next_attempt_at: outcome === 'retrying' ? next : delivery.next_attempt_at,
        last_attempt_at: at,
        last_status_code: result.statusCode,
        last_error: result.error,
        response_excerpt: result.excerpt,
        updated_at: at,
      });
      if (recorded) disabled = await store.recordEndpointHealth(trx, delivery.subscription_id, delivered, at, disableBefore);
      return delivered && this.mayChain() ? store.claimNextDue(trx, delivery.subscription_id, at, nextLease) : undefined;
    });
    if (outcome !== 'delivered') {
      this.context.log.info(
        { delivery: delivery.id, webhook: delivery.subscription_id, attempts, status_code: result.statusCode, error: result.error, outcome },
        outcome === 'failed' ? 'webhook delivery failed for good' : 'webhook delivery attempt failed; it will be retried',
      );
    }
    if (disabled) this.context.log.warn({ webhook: delivery.subscription_id }, `webhook disabled: nothing sent to it succeeded for ${this.context.config.WEBHOOK_RETRY_HOURS} hours`);
    this.report({ outcome, subscriptionId: delivery.subscription_id, statusCode: result.statusCode, durationMs: Date.now() - started });
    return chained ? { delivery: chained, lease: nextLease } : undefined;
  }

  private report(report: AttemptReport): void {
    for (const listener of this.reports) listener(report);
  }
}
