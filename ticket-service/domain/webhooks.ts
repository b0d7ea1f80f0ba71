/**
 * Webhook subscriptions, the event rows written in the transaction of each ticket change (the
 * transactional outbox of DESIGN.md "Webhooks"), and the delivery log. Delivery itself is in
 * webhooks-dispatcher.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { components, operations } from '../../openapi/generated/ticket-service.js';
import { webhookPrivateUrlsAllowed } from '../../platform/config.js';
import { ConflictError, NotFoundError, ProblemError, ValidationError, type FieldError } from '../../platform/errors.js';
import { pageById, type Page } from '../../platform/pagination.js';
import { parseDateField, toApiDate } from '../../platform/time.js';
import type { TicketRow } from '../store/schema.js';
import { findTicket } from '../store/tickets.js';
import * as store from '../store/webhooks.js';
import type { WebhookSubscriptionRow } from '../store/webhooks-schema.js';
import type { TicketServiceContext, TicketTransaction } from './context.js';
import { toApiTicket } from './representation.js';
import { urlRefusal } from './webhooks-safety.js';

type ApiWebhook = components['schemas']['Webhook'];
type ApiDelivery = components['schemas']['WebhookDelivery'];
export type WebhookEventType = components['schemas']['WebhookEventType'];
export type TicketEventType = Extract<WebhookEventType, `ticket.${string}`>;
type WebhookCreate = components['schemas']['WebhookCreate'];
type WebhookUpdate = components['schemas']['WebhookUpdate'];
type DeliveryQuery = NonNullable<operations['listWebhookDeliveries']['parameters']['query']>;
type PageQuery = { limit?: number; offset?: number; cursor?: string };

/** The old secret keeps signing beside the new one this long after a rotation. */
const ROTATION_WINDOW_MS = 24 * 3600 * 1000;

// The outbox: one row per change, in the change's own transaction

/**
 * Records a webhook event in the transaction of the change it reports: it exists exactly when the
 * change committed. `data` is the snapshot sent (taken now: the record may be gone by delivery time).
 * The waiting list's events come through here too.
 */
export async function recordWebhookEvent(trx: TicketTransaction, type: WebhookEventType, data: unknown, ticketId: number | null, fannedOut = false): Promise<number> {
  const timestamp = new Date().toISOString();
  const payload = JSON.stringify({ type, timestamp, data });
  return store.insertWebhookEvent(trx, { type, message_id: newMessageId(), ticket_id: ticketId, payload, created_at: timestamp }, fannedOut);
}

/** A ticket change's event: the ticket as the API shows it, without the remote `event` summary. */
export async function recordTicketEvent(trx: TicketTransaction, type: TicketEventType, row: TicketRow): Promise<void> {
  await recordWebhookEvent(trx, type, toApiTicket(row, undefined), row.id);
}

/** A deletion's event, with the ticket as it was just before (read in the deleting transaction, before the delete). */
export async function recordTicketDeleted(trx: TicketTransaction, ticketId: number): Promise<void> {
  const row = await findTicket(trx, ticketId);
  if (row) await recordTicketEvent(trx, 'ticket.deleted', row);
}

const newMessageId = (): string => `msg_${randomUUID().replace(/-/g, '')}`;
const newSecret = (): string => `whsec_${randomBytes(24).toString('base64')}`;

// Subscriptions

export function toApiWebhook(row: WebhookSubscriptionRow, now = new Date().toISOString()): ApiWebhook {
  const rotating = row.previous_secret_until !== null && row.previous_secret_until > now;
  return {
    id: row.id,
    url: row.url,
    events: JSON.parse(row.events) as string[],
    description: row.description,
    enabled: row.enabled === 1,
    disabled_reason: row.disabled_reason === 'failing' ? 'failing' : null,
    expires_at: toApiDate(row.expires_at),
    previous_secret_expires_at: rotating ? toApiDate(row.previous_secret_until) : null,
    created_at: toApiDate(row.created_at),
    updated_at: toApiDate(row.updated_at),
  };
}

function checkUrl(context: TicketServiceContext, url: string): void {
  const reason = urlRefusal(url, webhookPrivateUrlsAllowed(context.config));
  if (!reason) return;
  const hint = reason.startsWith('points at') ? '; set WEBHOOK_ALLOW_PRIVATE_URLS=true to allow it' : '';
  throw new ProblemError('webhook-url-refused', `${url} ${reason}${hint}.`, { errors: [{ pointer: '#/url', detail: reason }] });
}

/** An `expires_at` as stored: read as the API reads every date-time (platform/time.ts), to the millisecond in UTC. */
function storedDate(text: string): string {
  const errors: FieldError[] = [];
  const stored = parseDateField(text, '#/expires_at', errors);
  if (stored === undefined) throw new ValidationError(errors);
  return stored;
}

export async function createWebhook(context: TicketServiceContext, body: WebhookCreate): Promise<components['schemas']['WebhookWithSecret']> {
  checkUrl(context, body.url);
  const at = new Date().toISOString();
  const row = await context.write((trx) =>
    store.insertSubscription(trx, {
      url: body.url,
      events: JSON.stringify(body.events),
      description: body.description ?? null,
      enabled: body.enabled === false ? 0 : 1,
      disabled_reason: null,
      secret: newSecret(),
      previous_secret: null,
      previous_secret_until: null,
      expires_at: body.expires_at === undefined ? null : storedDate(body.expires_at),
      failing_since: null,
      created_at: at,
      updated_at: at,
    }),
  );
  return { ...toApiWebhook(row), secret: row.secret };
}

export async function findWebhook(context: TicketServiceContext, id: number): Promise<WebhookSubscriptionRow> {
  const row = await store.findSubscription(context.db, id);
  if (!row) throw new NotFoundError(`Webhook ${id} does not exist.`);
  return row;
}

export async function listWebhooks(context: TicketServiceContext, query: PageQuery): Promise<Page<WebhookSubscriptionRow>> {
  return pageById(
    query,
    (limit, position) => store.selectSubscriptionPage(context.db, limit, position),
    () => store.countSubscriptions(context.db),
  );
}

export async function updateWebhook(context: TicketServiceContext, id: number, body: WebhookUpdate): Promise<WebhookSubscriptionRow> {
  if (body.url !== undefined) checkUrl(context, body.url);
  const changes: Parameters<typeof store.updateSubscription>[2] = { updated_at: new Date().toISOString() };
  if (body.url !== undefined) changes.url = body.url;
  if (body.events !== undefined) changes.events = JSON.stringify(body.events);
  if (body.description !== undefined) changes.description = body.description;
  if (body.expires_at !== undefined) changes.expires_at = body.expires_at === null ? null : storedDate(body.expires_at);
  if (body.enabled !== undefined) {
    changes.enabled = body.enabled ? 1 : 0;
    // Re-enabled by hand: the failing streak starts over.
    if (body.enabled) Object.assign(changes, { disabled_reason: null, failing_since: null });
  }
  const row = await context.write((trx) => store.updateSubscription(trx, id, changes));
  if (!row) throw new NotFoundError(`Webhook ${id} does not exist.`);
  return row;
}

export async function deleteWebhook(context: TicketServiceContext, id: number): Promise<void> {
  if (!(await context.write((trx) => store.deleteSubscription(trx, id)))) throw new NotFoundError(`Webhook ${id} does not exist.`);
}

export async function rotateWebhookSecret(context: TicketServiceContext, id: number): Promise<components['schemas']['WebhookSecretRotation']> {
  const now = Date.now();
  const until = new Date(now + ROTATION_WINDOW_MS).toISOString();
  const secret = newSecret();
  const row = await context.write(async (trx) => {
    const current = await store.findSubscription(trx, id);
    if (!current) return undefined;
    return store.updateSubscription(trx, id, { secret, previous_secret: current.secret, previous_secret_until: until, updated_at: new Date(now).toISOString() });
  });
  if (!row) throw new NotFoundError(`Webhook ${id} does not exist.`);
  return { secret, previous_secret_expires_at: toApiDate(until) };
}

function refuseDisabled(row: WebhookSubscriptionRow): void {
  if (row.enabled !== 1) throw new ConflictError('conflict', `Webhook ${row.id} is disabled; enable it with PATCH first.`);
}

/** A `webhook.ping` delivery to this one subscription, due now. */
export async function pingWebhook(context: TicketServiceContext, id: number): Promise<ApiDelivery> {
  refuseDisabled(await findWebhook(context, id));
  const eventId = await context.write(async (trx) => {
    // Written fanned out: a ping goes to its own subscription only.
    const eventId = await recordWebhookEvent(trx, 'webhook.ping', { webhook_id: id }, null, true);
    const at = new Date().toISOString();
    await store.insertDeliveries(trx, [{ event_id: eventId, subscription_id: id, next_attempt_at: at, retry_until: retryUntil(context, Date.now()), created_at: at }]);
    return eventId;
  });
  const delivery = await store.findDeliveryOfEvent(context.db, id, eventId);
  if (!delivery) throw new NotFoundError(`Webhook ${id} does not exist.`);
  return toApiDelivery(delivery);
}

export const retryUntil = (context: TicketServiceContext, from: number): string => new Date(from + context.config.WEBHOOK_RETRY_HOURS * 3600_000).toISOString();

// The delivery log

export function toApiDelivery(row: store.LoggedDelivery): ApiDelivery {
  return {
    id: row.id,
    subscription_id: row.subscription_id,
    message_id: row.message_id,
    event_type: row.type as WebhookEventType,
    ticket_id: row.ticket_id,
    status: row.status,
    attempts: row.attempts,
    next_attempt_at: row.status === 'pending' ? toApiDate(row.next_attempt_at) : null,
    last_attempt_at: toApiDate(row.last_attempt_at),
    last_status_code: row.last_status_code,
    last_error: row.last_error,
    response_excerpt: row.response_excerpt,
    created_at: toApiDate(row.created_at),
    updated_at: toApiDate(row.updated_at),
  };
}

export async function listDeliveries(context: TicketServiceContext, id: number, query: DeliveryQuery): Promise<Page<store.LoggedDelivery>> {
  await findWebhook(context, id);
  return pageById(
    query,
    (limit, position) => store.selectDeliveryPage(context.db, id, query.status, limit, position),
    () => store.countDeliveries(context.db, id, query.status),
  );
}

/** The delivery is due again now, with a fresh retry window; it keeps its `webhook-id`. */
export async function retryDelivery(context: TicketServiceContext, id: number, deliveryId: number): Promise<ApiDelivery> {
  refuseDisabled(await findWebhook(context, id));
  const now = Date.now();
  const requeued = await context.write((trx) => store.requeueDelivery(trx, id, deliveryId, new Date(now).toISOString(), retryUntil(context, now)));
  const row = requeued ? await store.findDelivery(context.db, id, deliveryId) : undefined;
  if (!row) throw new NotFoundError(`Webhook ${id} has no delivery ${deliveryId}.`);
  return toApiDelivery(row);
}
