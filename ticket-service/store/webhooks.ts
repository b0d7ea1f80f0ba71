/**
 * Queries on webhook subscriptions, the webhook event outbox and deliveries. Work is found by status and
 * due time (never by an id cursor: ids commit out of order) and claimed by conditional updates.
 * Every function that makes a delivery pending or ends one, or changes how an endpoint stands
 * (failing, disabled for failing), records it for the metrics (`ticketChanges`, applied on commit).
 */
import type { Kysely, Updateable } from 'kysely';
import type { Cursor } from '../../platform/pagination.js';
import { prepareQuery } from '../../platform/store/prepared.js';
import { WEBHOOK_QUEUE, ticketChanges, webhookEndpointFigure, type WebhookEndpointState } from '../metrics.js';
import type { TicketDatabase } from './schema.js';
import type { WebhookDeliveryRow, WebhookDeliveryStatus, WebhookDeliveryTable, WebhookEventRow, WebhookSubscriptionRow, WebhookSubscriptionTable } from './webhooks-schema.js';

type Db = Kysely<TicketDatabase>;

/** How a subscription counts among the failing endpoints (ticket-service/metrics.ts), if at all. */
export function endpointState(row: Pick<WebhookSubscriptionRow, 'failing_since' | 'disabled_reason'>): WebhookEndpointState | undefined {
  if (row.disabled_reason === 'failing') return 'disabled';
  return row.failing_since === null ? undefined : 'failing';
}

function recordEndpointState(db: Db, before: WebhookEndpointState | undefined, after: WebhookEndpointState | undefined): void {
  if (before === after) return;
  ticketChanges.record(db, ({ figures }) => {
    if (before) figures.add(webhookEndpointFigure(before), -1);
    if (after) figures.add(webhookEndpointFigure(after), 1);
  });
}

/** Deliveries (by their creation time) that became pending (+1) or stopped being pending (−1). */
function recordQueue(db: Db, createdAt: string[], delta: 1 | -1): void {
  if (createdAt.length === 0) return;
  ticketChanges.record(db, ({ figures }) => {
    for (const at of createdAt) figures.addAt(WEBHOOK_QUEUE, at, delta);
  });
}

// Subscriptions

type NewSubscription = Omit<WebhookSubscriptionRow, 'id'>;

export async function insertSubscription(db: Db, values: NewSubscription): Promise<WebhookSubscriptionRow> {
  const row = await db.insertInto('webhook_subscriptions').values(values).returningAll().executeTakeFirstOrThrow();
  recordEndpointState(db, undefined, endpointState(row));
  return row;
}

export async function findSubscription(db: Db, id: number): Promise<WebhookSubscriptionRow | undefined> {
  return db.selectFrom('webhook_subscriptions').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function updateSubscription(db: Db, id: number, changes: Updateable<WebhookSubscriptionTable>): Promise<WebhookSubscriptionRow | undefined> {
  const healthChanges = changes.failing_since !== undefined || changes.disabled_reason !== undefined;
  // Locked until the update: the dispatcher's recordEndpointHealth cannot change it in between.
  const before = healthChanges ? await db.selectFrom('webhook_subscriptions').select(['failing_since', 'disabled_reason']).where('id', '=', id).forUpdate().executeTakeFirst() : undefined;
  const row = await db.updateTable('webhook_subscriptions').set(changes).where('id', '=', id).returningAll().executeTakeFirst();
  if (row && before) recordEndpointState(db, endpointState(before), endpointState(row));
  return row;
}

/** Removes a subscription and its deliveries (the pending ones leave the queue figure); false when there was none. */
export async function deleteSubscription(db: Db, id: number): Promise<boolean> {
  const deliveries = await db.deleteFrom('webhook_deliveries').where('subscription_id', '=', id).returning(['status', 'created_at']).execute();
  recordQueue(
    db,
    deliveries.filter((delivery) => delivery.status === 'pending').map((delivery) => delivery.created_at),
    -1,
  );
  const gone = await db.deleteFrom('webhook_subscriptions').where('id', '=', id).returning(['failing_since', 'disabled_reason']).executeTakeFirst();
  if (gone) recordEndpointState(db, endpointState(gone), undefined);
  return gone !== undefined;
}

export async function selectSubscriptionPage(db: Db, limit: number, position: { cursor?: Cursor; offset: number }): Promise<WebhookSubscriptionRow[]> {
  const backwards = position.cursor?.d === 'p';
  let query = db.selectFrom('webhook_subscriptions').selectAll();
  if (position.cursor) query = query.where('id', backwards ? '<' : '>', Number(position.cursor.id));
  query = query.orderBy('id', backwards ? 'desc' : 'asc').limit(limit + 1);
  if (!position.cursor && position.offset > 0) query = query.offset(position.offset);
  return query.execute();
}

export async function countSubscriptions(db: Db): Promise<number> {
  const row = await db.selectFrom('webhook_subscriptions').select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Subscriptions that take new events now: enabled and not past their expiry. */
export async function activeSubscriptions(db: Db, now: string): Promise<WebhookSubscriptionRow[]> {
  return db
    .selectFrom('webhook_subscriptions')
    .selectAll()
    .where('enabled', '=', 1)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    // In id order, so that replicas fanning out the same events insert (and lock) deliveries in one order.
    .orderBy('id')
    .execute();
}

/** Temporary subscriptions past their expiry go, with their deliveries: nothing keeps retrying for them. */
export async function deleteExpiredSubscriptions(db: Db, now: string): Promise<number> {
  const expired = await db.selectFrom('webhook_subscriptions').select('id').where('expires_at', '<=', now).execute();
  for (const { id } of expired) await deleteSubscription(db, id);
  return expired.length;
}

// The event outbox

type NewWebhookEvent = Omit<WebhookEventRow, 'id' | 'fanned_out'>;

// On the path of every ticket change: compiled once (platform/store/prepared.ts).
const webhookEventInsert = prepareQuery<TicketDatabase, NewWebhookEvent & { fanned_out: number }, { id: number }>((db, param) =>
  db
    .insertInto('webhook_events')
    .values({ type: param('type'), message_id: param('message_id'), ticket_id: param('ticket_id'), payload: param('payload'), fanned_out: param('fanned_out'), created_at: param('created_at') })
    .returning('id'),
);

export async function insertWebhookEvent(db: Db, values: NewWebhookEvent, fannedOut = false): Promise<number> {
  const row = await webhookEventInsert.takeFirst(db, { ...values, fanned_out: fannedOut ? 1 : 0 });
  if (!row) throw new Error('the webhook event insert returned no id');
  return row.id;
}

export async function eventsToFanOut(db: Db, limit: number): Promise<WebhookEventRow[]> {
  return db.selectFrom('webhook_events').selectAll().where('fanned_out', '=', 0).orderBy('id').limit(limit).execute();
}

export async function markFannedOut(db: Db, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await db.updateTable('webhook_events').set({ fanned_out: 1 }).where('id', 'in', ids).where('fanned_out', '=', 0).execute();
}

/** Fanned-out events older than `before` with no delivery (left). */
export async function deleteSpentEvents(db: Db, before: string): Promise<number> {
  const result = await db
    .deleteFrom('webhook_events')
    .where('fanned_out', '=', 1)
    .where('created_at', '<', before)
    .where((eb) => eb.not(eb.exists(eb.selectFrom('webhook_deliveries').select('webhook_deliveries.id').whereRef('webhook_deliveries.event_id', '=', 'webhook_events.id'))))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

// Deliveries

export type NewDelivery = Pick<WebhookDeliveryRow, 'event_id' | 'subscription_id' | 'next_attempt_at' | 'retry_until' | 'created_at'>;

/** Inserts deliveries; one that exists already (another replica fanned out first) is skipped. */
export async function insertDeliveries(db: Db, rows: NewDelivery[]): Promise<number> {
  if (rows.length === 0) return 0;
  const values = rows.map((row) => ({ ...row, status: 'pending' as const, attempts: 0, lease_until: null, first_attempt_at: null, last_attempt_at: null, last_status_code: null, last_error: null, response_excerpt: null, updated_at: row.created_at }));
  const inserted = await db
    .insertInto('webhook_deliveries')
    .values(values)
    .onConflict((oc) => oc.columns(['event_id', 'subscription_id']).doNothing())
    .returning('created_at')
    .execute();
  recordQueue(
    db,
    inserted.map((row) => row.created_at),
    1,
  );
  return inserted.length;
}

export interface DueDelivery extends WebhookDeliveryRow {
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: string | null;
  message_id: string;
  payload: string;
}

/**
 * Pending deliveries due now, unleased, of enabled subscriptions, oldest due first; deliveries of the
 * endpoints in `skip` (at their concurrency limit here) are left out, so one slow endpoint's backlog
 * never fills the batch.
 */
export async function dueDeliveries(db: Db, now: string, limit: number, skip: number[]): Promise<DueDelivery[]> {
  let query = attemptable(db, now)
    .where('d.status', '=', 'pending')
    .where('d.next_attempt_at', '<=', now)
    .where((eb) => eb.or([eb('d.lease_until', 'is', null), eb('d.lease_until', '<=', now)]));
  if (skip.length > 0) query = query.where('d.subscription_id', 'not in', skip);
  return query.orderBy('d.next_attempt_at').limit(limit).execute();
}

/** Deliveries with what an attempt needs (the endpoint, its secrets, the event's message), of subscriptions enabled and not expired at `now`. */
const attemptable = (db: Db, now: string) =>
  db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhook_subscriptions as s', 's.id', 'd.subscription_id')
    .innerJoin('webhook_events as e', 'e.id', 'd.event_id')
    .selectAll('d')
    .select(['s.url', 's.secret', 's.previous_secret', 's.previous_secret_until', 'e.message_id', 'e.payload'])
    .where('s.enabled', '=', 1)
    .where((eb) => eb.or([eb('s.expires_at', 'is', null), eb('s.expires_at', '>', now)]));

// Every delivery is claimed and finished once: compiled once (platform/store/prepared.ts).
const deliveryClaim = prepareQuery<TicketDatabase, { id: number; now: string; lease_until: string }, never>((db, param) =>
  db
    .updateTable('webhook_deliveries')
    .set({ lease_until: param('lease_until') })
    .where('id', '=', param('id'))
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', param('now'))
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', param('now'))])),
);

/** Claims a due delivery for one attempt: a conditional update only one dispatcher wins. */
export async function claimDelivery(db: Db, id: number, now: string, leaseUntil: string): Promise<boolean> {
  const result = await deliveryClaim.execute(db, { id, now, lease_until: leaseUntil });
  return (result.numAffectedRows ?? 0n) > 0n;
}

/**
 * Claims the next due delivery of one endpoint (the longest due) for an attempt, in one conditional
 * update: on PostgreSQL two replicas may pick the same row, and the update's own conditions let only
 * one of them have it. Returns the claimed delivery with what its attempt needs, or undefined when
 * nothing of that endpoint is due (or the endpoint was disabled or has expired meanwhile: then the
 * claim is given back in the same change).
 */
export async function claimNextDue(db: Db, subscriptionId: number, now: string, leaseUntil: string): Promise<DueDelivery | undefined> {
  const claimed = await nextDueClaim.takeFirst(db, { subscription_id: subscriptionId, now, lease_until: leaseUntil });
  if (!claimed) return undefined;
  const delivery = await dueDeliveryById.takeFirst(db, { id: claimed.id, now });
  if (!delivery) await finishAttempt(db, claimed.id, leaseUntil, undefined);
  return delivery;
}

const nextDueClaim = prepareQuery<TicketDatabase, { subscription_id: number; now: string; lease_until: string }, { id: number }>((db, param) =>
  db
    .updateTable('webhook_deliveries')
    .set({ lease_until: param('lease_until') })
    .where((eb) =>
      eb(
        'id',
        '=',
        eb
          .selectFrom('webhook_deliveries as n')
          .select('n.id')
          .where('n.subscription_id', '=', param('subscription_id'))
          .where('n.status', '=', 'pending')
          .where('n.next_attempt_at', '<=', param('now'))
          .where((inner) => inner.or([inner('n.lease_until', 'is', null), inner('n.lease_until', '<=', param('now'))]))
          // The due index's own order: the first match ends the scan (ordering by id sorted every due row).
          .orderBy('n.next_attempt_at')
          .limit(1),
      ),
    )
    .where('status', '=', 'pending')
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', param('now'))]))
    .returning('id'),
);

const dueDeliveryById = prepareQuery<TicketDatabase, { id: number; now: string }, DueDelivery>((db, param) => attemptable(db, param('now')).where('d.id', '=', param('id')));

/** What an attempt that got an answer (or none) records. */
type AttemptRecord = Pick<
  WebhookDeliveryRow,
  'status' | 'attempts' | 'first_attempt_at' | 'next_attempt_at' | 'last_attempt_at' | 'last_status_code' | 'last_error' | 'response_excerpt' | 'updated_at'
>;

const attemptFinish = prepareQuery<TicketDatabase, AttemptRecord & { id: number; lease: string }, { status: WebhookDeliveryStatus; created_at: string }>((db, param) =>
  db
    .updateTable('webhook_deliveries')
    .set({
      status: param('status'),
      attempts: param('attempts'),
      first_attempt_at: param('first_attempt_at'),
      next_attempt_at: param('next_attempt_at'),
      last_attempt_at: param('last_attempt_at'),
      last_status_code: param('last_status_code'),
      last_error: param('last_error'),
      response_excerpt: param('response_excerpt'),
      updated_at: param('updated_at'),
      lease_until: null,
    })
    .where('id', '=', param('id'))
    .where('lease_until', '=', param('lease'))
    .where('status', '=', 'pending')
    .returning(['status', 'created_at']),
);

/**
 * Records an attempt's outcome (or, with `undefined`, only gives the lease back), if this dispatcher
 * still holds the lease it claimed on a pending delivery.
 */
export async function finishAttempt(db: Db, id: number, leaseUntil: string, record: AttemptRecord | undefined): Promise<boolean> {
  const row =
    record === undefined
      ? await db.updateTable('webhook_deliveries').set({ lease_until: null }).where('id', '=', id).where('lease_until', '=', leaseUntil).where('status', '=', 'pending').returning(['status', 'created_at']).executeTakeFirst()
      : await attemptFinish.takeFirst(db, { ...record, id, lease: leaseUntil });
  if (row && row.status !== 'pending') recordQueue(db, [row.created_at], -1);
  return row !== undefined;
}

export type LoggedDelivery = WebhookDeliveryRow & { type: string; message_id: string; ticket_id: number | null };

/** A subscription's deliveries as the log shows them: each with its event's type, message id and ticket. */
const loggedDeliveries = (db: Db, subscriptionId: number) =>
  db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhook_events as e', 'e.id', 'd.event_id')
    .selectAll('d')
    .select(['e.type', 'e.message_id', 'e.ticket_id'])
    .where('d.subscription_id', '=', subscriptionId);

export async function findDelivery(db: Db, subscriptionId: number, id: number): Promise<LoggedDelivery | undefined> {
  return loggedDeliveries(db, subscriptionId).where('d.id', '=', id).executeTakeFirst();
}

export async function findDeliveryOfEvent(db: Db, subscriptionId: number, eventId: number): Promise<LoggedDelivery | undefined> {
  return loggedDeliveries(db, subscriptionId).where('d.event_id', '=', eventId).executeTakeFirst();
}

/** A page of a subscription's delivery log, newest first. */
export async function selectDeliveryPage(db: Db, subscriptionId: number, status: WebhookDeliveryStatus | undefined, limit: number, position: { cursor?: Cursor; offset: number }): Promise<LoggedDelivery[]> {
  const backwards = position.cursor?.d === 'p';
  let query = loggedDeliveries(db, subscriptionId);
  if (status) query = query.where('d.status', '=', status);
  if (position.cursor) query = query.where('d.id', backwards ? '>' : '<', Number(position.cursor.id));
  query = query.orderBy('d.id', backwards ? 'asc' : 'desc').limit(limit + 1);
  if (!position.cursor && position.offset > 0) query = query.offset(position.offset);
  return query.execute();
}

export async function countDeliveries(db: Db, subscriptionId: number, status: WebhookDeliveryStatus | undefined): Promise<number> {
  let query = db.selectFrom('webhook_deliveries').select((eb) => eb.fn.countAll<number>().as('count')).where('subscription_id', '=', subscriptionId);
  if (status) query = query.where('status', '=', status);
  const row = await query.executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Makes a delivery pending and due now, with a fresh retry window. */
export async function requeueDelivery(db: Db, subscriptionId: number, id: number, now: string, retryUntil: string): Promise<boolean> {
  // Locked until the update: whether it joins the queue figure depends on its status before.
  const before = await db.selectFrom('webhook_deliveries').select('status').where('id', '=', id).where('subscription_id', '=', subscriptionId).forUpdate().executeTakeFirst();
  if (!before) return false;
  const row = await db
    .updateTable('webhook_deliveries')
    .set({ status: 'pending', next_attempt_at: now, retry_until: retryUntil, first_attempt_at: null, updated_at: now })
    .where('id', '=', id)
    .where('subscription_id', '=', subscriptionId)
    .returning('created_at')
    .executeTakeFirst();
  if (row && before.status !== 'pending') recordQueue(db, [row.created_at], 1);
  return row !== undefined;
}

/** Delivered and failed rows whose last change is older than `before` leave the log. */
export async function deleteFinishedDeliveries(db: Db, before: string): Promise<number> {
  const result = await db.deleteFrom('webhook_deliveries').where('status', 'in', ['delivered', 'failed']).where('updated_at', '<', before).executeTakeFirst();
  return Number(result.numDeletedRows);
}

// After every delivered attempt (a no-op unless the endpoint was failing): compiled once.
const endpointRecovery = prepareQuery<TicketDatabase, { id: number }, { disabled_reason: WebhookSubscriptionRow['disabled_reason'] }>((db, param) =>
  db.updateTable('webhook_subscriptions').set({ failing_since: null }).where('id', '=', param('id')).where('failing_since', 'is not', null).returning('disabled_reason'),
);

/**
 * After an attempt: a success ends the endpoint's failing streak; a failure starts one if none runs,
 * or, when the running one began by `disableBefore` (WEBHOOK_RETRY_HOURS ago), disables the endpoint:
 * nothing sent to it succeeded all that time. (Not how long one delivery was retried: a delivery first
 * tried after its retry window fails at once, and one failed attempt is no reason to disable.)
 * True when this call disabled it.
 */
export async function recordEndpointHealth(db: Db, subscriptionId: number, delivered: boolean, now: string, disableBefore: string): Promise<boolean> {
  // Each update's conditions say what the row was before, and none changes disabled_reason but the last.
  if (delivered) {
    const recovered = await endpointRecovery.takeFirst(db, { id: subscriptionId });
    if (recovered && recovered.disabled_reason !== 'failing') recordEndpointState(db, 'failing', undefined);
    return false;
  }
  const failing = await db.updateTable('webhook_subscriptions').set({ failing_since: now }).where('id', '=', subscriptionId).where('failing_since', 'is', null).returning('disabled_reason').executeTakeFirst();
  if (failing) {
    if (failing.disabled_reason !== 'failing') recordEndpointState(db, undefined, 'failing');
    // A streak that starts now is not old enough to disable anything.
    return false;
  }
  const disabled = await db
    .updateTable('webhook_subscriptions')
    .set({ enabled: 0, disabled_reason: 'failing', updated_at: now })
    .where('id', '=', subscriptionId)
    .where('enabled', '=', 1)
    .where('disabled_reason', 'is', null)
    .where('failing_since', '<=', disableBefore)
    .returning('id')
    .executeTakeFirst();
  if (disabled) recordEndpointState(db, 'failing', 'disabled');
  return disabled !== undefined;
}
