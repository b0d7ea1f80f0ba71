/**
 * ticket-service's metrics: purchases by outcome, confirms, cancellations by reason, the sweeper's
 * and the reconciler's actions (counters), and the figures of its database (tickets by status, the
 * release outbox's depth and oldest pending age), kept current by the store functions that change
 * them (`ticketChanges.record`, applied once the change is committed: platform/metrics-figures.ts),
 * webhook delivery attempts by outcome (the dispatcher reports each), the webhook queue's depth,
 * oldest pending age and failing endpoints, and the waiting list's size by status (figures, like the
 * outbox's).
 */
import type { FastifyInstance } from 'fastify';
import type { Counter } from 'prom-client';
import { changeRecorder, type FigureGauge, type FigureSet } from '../platform/metrics-figures.js';
import { ServiceMetrics } from '../platform/metrics.js';

export const PUBLIC_TICKET_STATUSES = ['RESERVED', 'CONFIRMED', 'CANCELLED'] as const;
export const ticketFigure = (status: string): string => `tickets:${status}`;
export const OUTBOX = 'outbox';
/** Pending webhook deliveries, by the second each was created. */
export const WEBHOOK_QUEUE = 'webhook_queue';
/**
 * How an endpoint (a subscription) stands: `failing` when every attempt since `failing_since` failed
 * and it was not disabled for it, `disabled` when the dispatcher disabled it for failing.
 */
export const WEBHOOK_ENDPOINT_STATES = ['failing', 'disabled'] as const;
export type WebhookEndpointState = (typeof WEBHOOK_ENDPOINT_STATES)[number];
export const webhookEndpointFigure = (state: WebhookEndpointState): string => `webhook_endpoints:${state}`;
/** As the API shows them: OFFERING (internal) counts as WAITING. */
export const WAITLIST_STATUSES = ['WAITING', 'OFFERED', 'CONFIRMED', 'DECLINED', 'EXPIRED', 'LEFT', 'CLOSED'] as const;
export const waitlistFigure = (status: string): string => `waitlist:${status === 'OFFERING' ? 'WAITING' : status}`;

export type PurchaseOutcome = 'reserved' | 'sold_out' | 'sales_closed' | 'not_found' | 'invalid' | 'unavailable' | 'replayed' | 'in_flight' | 'rate_limited';
export type ReconcilerAction = 'abandoned_purchase' | 'released_orphan_hold' | 'completed_confirm';

/** Seconds since the oldest of an aged figure was created; 0 when there is none. */
function oldestAge(figures: FigureSet, name: string, nowSeconds: number): number {
  const oldest = figures.oldest(name);
  return oldest === undefined ? 0 : Math.max(0, Math.floor(nowSeconds) - oldest);
}

export const ticketFigureGauges: FigureGauge[] = [
  {
    name: 'eventsync_tickets',
    help: 'Tickets by status',
    labelNames: ['status'],
    values: (f) => PUBLIC_TICKET_STATUSES.map((status) => ({ labels: { status }, value: f.get(ticketFigure(status)) })),
  },
  {
    name: 'eventsync_waitlist_entries',
    help: 'Waiting-list entries by status',
    labelNames: ['status'],
    values: (f) => WAITLIST_STATUSES.map((status) => ({ labels: { status }, value: f.get(waitlistFigure(status)) })),
  },
  { name: 'eventsync_outbox_pending', help: 'Seat releases waiting in the outbox for event-service', values: (f) => [{ value: f.count(OUTBOX) }] },
  {
    name: 'eventsync_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest seat release waiting in the outbox (0 when it is empty)',
    values: (f, now) => [{ value: oldestAge(f, OUTBOX, now) }],
  },
  { name: 'eventsync_webhook_deliveries_pending', help: 'Webhook deliveries still to be delivered (due, retrying, or behind a disabled endpoint)', values: (f) => [{ value: f.count(WEBHOOK_QUEUE) }] },
  {
    name: 'eventsync_webhook_oldest_pending_age_seconds',
    help: 'Age of the oldest pending webhook delivery since it was created (0 when none is pending)',
    values: (f, now) => [{ value: oldestAge(f, WEBHOOK_QUEUE, now) }],
  },
  {
    name: 'eventsync_webhook_failing_endpoints',
    help: 'Webhook endpoints by state: failing (every attempt since some time failed; still tried) and disabled (by the dispatcher, for failing)',
    labelNames: ['state'],
    values: (f) => WEBHOOK_ENDPOINT_STATES.map((state) => ({ labels: { state }, value: f.get(webhookEndpointFigure(state)) })),
  },
];

export class TicketMetrics {
  readonly service = new ServiceMetrics(ticketFigureGauges);
  readonly purchases: Counter<'outcome'> = this.service.counter('eventsync_purchases_total', 'Purchases (POST /tickets) by outcome', ['outcome']);
  readonly confirms: Counter = this.service.counter('eventsync_ticket_confirms_total', 'Tickets confirmed (RESERVED to CONFIRMED), by a request or by the reconciler');
  readonly cancellations: Counter<'reason'> = this.service.counter('eventsync_ticket_cancellations_total', 'Tickets cancelled, by reason', ['reason']);
  readonly sweeperCancellations: Counter = this.service.counter('eventsync_sweeper_cancellations_total', 'Reservations the sweeper cancelled because they expired');
  readonly reconcilerActions: Counter<'action'> = this.service.counter('eventsync_reconciler_actions_total', 'What the reconciler did, by kind', ['action']);
  readonly webhookAttempts: Counter<'outcome'> = this.service.counter('eventsync_webhook_attempts_total', 'Webhook delivery attempts by outcome: delivered, retrying (failed, retried later), failed (for good), aborted (by a shutdown)', ['outcome']);

  get figures() {
    return this.service.figures;
  }

  /** Counts every answer of POST /tickets by outcome, those refused before the handler (a bad body, a rate limit) too. */
  countPurchases(app: FastifyInstance): void {
    app.addHook('onSend', async (request, reply, payload) => {
      if (request.operationId === 'createTicket') this.purchases.inc({ outcome: purchaseOutcome(reply.statusCode, reply.getHeader('idempotent-replayed') === 'true', payload) });
      return payload;
    });
  }
}

const CONFLICTS: Record<string, PurchaseOutcome> = {
  'urn:eventsync:problem:sold-out': 'sold_out',
  'urn:eventsync:problem:sales-closed': 'sales_closed',
  'urn:eventsync:problem:idempotency-in-flight': 'in_flight',
};

function purchaseOutcome(status: number, replayed: boolean, payload: unknown): PurchaseOutcome {
  if (replayed) return 'replayed';
  if (status === 201) return 'reserved';
  if (status === 404) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status === 409) {
    const type = typeof payload === 'string' ? /"type":"([^"]+)"/.exec(payload)?.[1] : undefined;
    return (type === undefined ? undefined : CONFLICTS[type]) ?? 'unavailable';
  }
  return status >= 500 ? 'unavailable' : 'invalid';
}

/** What ticket-service's store records against a change's transaction. */
export const ticketChanges = changeRecorder<TicketMetrics>();
