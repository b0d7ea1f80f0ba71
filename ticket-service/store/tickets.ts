/** Queries on tickets, idempotency keys and the release outbox. Status changes are conditional updates. */
import type { Kysely, Updateable } from 'kysely';
import type { Cursor } from '../../platform/pagination.js';
import { prepareQuery } from '../../platform/store/prepared.js';
import type { IdempotencyRow, NewTicketRow, OutboxRow, TicketDatabase, TicketRow, TicketStatus, TicketTable } from './schema.js';
import { OUTBOX, ticketChanges, ticketFigure } from '../metrics.js';

type Db = Kysely<TicketDatabase>;

/**
 * A ticket moved between statuses (a new ticket comes from PENDING; undefined: deleted): the figures by
 * status (PENDING and ABANDONED are internal, not counted), confirms and cancellations by reason,
 * applied once the change is committed.
 */
function recordStatusChange(db: Db, from: TicketStatus, to: TicketStatus | undefined, reason?: string | null): void {
  const counted = (status: TicketStatus | undefined): status is TicketStatus => status !== undefined && status !== 'PENDING' && status !== 'ABANDONED';
  ticketChanges.record(db, (metrics) => {
    if (counted(from)) metrics.figures.add(ticketFigure(from), -1);
    if (counted(to)) metrics.figures.add(ticketFigure(to), 1);
    if (to === 'CONFIRMED') metrics.confirms.inc();
    if (to === 'CANCELLED') metrics.cancellations.inc({ reason: reason ?? 'customer' });
  });
}

export const PUBLIC_STATUSES = ['RESERVED', 'CONFIRMED', 'CANCELLED'] as const;

/** Every column but the generated id. */
export type TicketValues = Required<Omit<NewTicketRow, 'id'>>;

const ticketInsert = prepareQuery<TicketDatabase, TicketValues, { id: number }>((db, param) =>
  db
    .insertInto('tickets')
    .values({
      event_id: param('event_id'),
      customer_name: param('customer_name'),
      customer_email: param('customer_email'),
      quantity: param('quantity'),
      unit_price: param('unit_price'),
      total_price: param('total_price'),
      currency: param('currency'),
      status: param('status'),
      reference: param('reference'),
      expires_at: param('expires_at'),
      cancellation_reason: param('cancellation_reason'),
      payment_reference: param('payment_reference'),
      confirming_at: param('confirming_at'),
      created_at: param('created_at'),
      updated_at: param('updated_at'),
    })
    .returning('id'),
);

/** The row as stored: every value is the one given, but the id the database assigned. */
export async function insertTicket(db: Db, row: TicketValues): Promise<TicketRow> {
  const inserted = await ticketInsert.takeFirst(db, row);
  if (!inserted) throw new Error('the ticket insert returned no id');
  recordStatusChange(db, 'PENDING', row.status);
  return { id: inserted.id, ...row };
}

const ticketById = prepareQuery<TicketDatabase, { id: number }, TicketRow>((db, param) => db.selectFrom('tickets').selectAll().where('id', '=', param('id')));

export async function findTicket(db: Db, id: number): Promise<TicketRow | undefined> {
  return ticketById.takeFirst(db, { id });
}

/**
 * Changes a ticket only if it is still as it was read (its status and `confirming_at`: a confirm that
 * started meanwhile is not overtaken); the updated row, or undefined if it had moved on.
 */
export async function updateTicketAsRead(db: Db, row: Pick<TicketRow, 'id' | 'status' | 'confirming_at'>, changes: Updateable<TicketTable>): Promise<TicketRow | undefined> {
  const updated = await db
    .updateTable('tickets')
    .set(changes)
    .where('id', '=', row.id)
    .where('status', '=', row.status)
    .where('confirming_at', row.confirming_at === null ? 'is' : '=', row.confirming_at)
    .returningAll()
    .executeTakeFirst();
  if (updated && updated.status !== row.status) recordStatusChange(db, row.status, updated.status, updated.cancellation_reason);
  return updated;
}

/** Changes a ticket only if it is still in `from`; the updated row, or undefined if it had moved on. */
export async function updateTicketIf(db: Db, id: number, from: TicketStatus, changes: Updateable<TicketTable>): Promise<TicketRow | undefined> {
  const updated = await db.updateTable('tickets').set(changes).where('id', '=', id).where('status', '=', from).returningAll().executeTakeFirst();
  if (updated && updated.status !== from) recordStatusChange(db, from, updated.status, updated.cancellation_reason);
  return updated;
}

/**
 * A retry with the same Idempotency-Key claims its PENDING ticket again: its age restarts (so the
 * reconciler's abandonment, which carries the age condition, cannot take it while the retry runs) and
 * its expiry is renewed. Undefined when the ticket is no longer PENDING (the reconciler took it).
 */
export async function reclaimPendingTicket(db: Db, id: number, now: string, expiresAt: string): Promise<TicketRow | undefined> {
  return db
    .updateTable('tickets')
    .set({ created_at: now, updated_at: now, expires_at: expiresAt })
    .where('id', '=', id)
    .where('status', '=', 'PENDING')
    .returningAll()
    .executeTakeFirst();
}

/**
 * The reconciler's abandonment: PENDING → ABANDONED only while the ticket is still older than
 * `cutoff`, in one conditional update, so a retry that claimed it again meanwhile always wins.
 */
export async function abandonStalePendingTicket(db: Db, id: number, cutoff: string, now: string): Promise<boolean> {
  const result = await db
    .updateTable('tickets')
    .set({ status: 'ABANDONED', updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'PENDING')
    .where('created_at', '<', cutoff)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Removes a ticket that is still PENDING (a purchase refused for good); a ticket that moved on stays. */
export async function deletePendingTicket(db: Db, id: number): Promise<void> {
  await db.deleteFrom('tickets').where('id', '=', id).where('status', '=', 'PENDING').execute();
}

export async function deleteTicketRow(db: Db, id: number): Promise<void> {
  const deleted = await db.deleteFrom('tickets').where('id', '=', id).returning('status').executeTakeFirst();
  if (deleted) recordStatusChange(db, deleted.status, undefined);
}

export interface TicketFilter {
  eventId?: number;
  status?: TicketStatus;
}

export async function selectTicketPage(db: Db, filter: TicketFilter, limit: number, position: { cursor?: Cursor; offset: number }): Promise<TicketRow[]> {
  const backwards = position.cursor?.d === 'p';
  let query = db.selectFrom('tickets').selectAll();
  query = filter.status ? query.where('status', '=', filter.status) : query.where('status', 'in', [...PUBLIC_STATUSES]);
  if (filter.eventId !== undefined) query = query.where('event_id', '=', filter.eventId);
  if (position.cursor) query = query.where('id', backwards ? '<' : '>', Number(position.cursor.id));
  query = query.orderBy('id', backwards ? 'desc' : 'asc').limit(limit + 1);
  if (!position.cursor && position.offset > 0) query = query.offset(position.offset);
  return query.execute();
}

export async function countTickets(db: Db, filter: TicketFilter): Promise<number> {
  let query = db.selectFrom('tickets').select((eb) => eb.fn.countAll<number>().as('count'));
  query = filter.status ? query.where('status', '=', filter.status) : query.where('status', 'in', [...PUBLIC_STATUSES]);
  if (filter.eventId !== undefined) query = query.where('event_id', '=', filter.eventId);
  const row = await query.executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function selectTicketsByStatusBefore(db: Db, status: TicketStatus, column: 'expires_at' | 'created_at' | 'confirming_at', before: string, limit: number): Promise<TicketRow[]> {
  return db.selectFrom('tickets').selectAll().where('status', '=', status).where(column, '<', before).orderBy(column).limit(limit).execute();
}

export async function findReservedByReferences(db: Db, references: string[]): Promise<TicketRow[]> {
  if (references.length === 0) return [];
  return db.selectFrom('tickets').selectAll().where('reference', 'in', references).execute();
}

// Idempotency keys

export async function findIdempotencyKey(db: Db, key: string, now: string): Promise<IdempotencyRow | undefined> {
  return db.selectFrom('idempotency_keys').selectAll().where('key', '=', key).where('expires_at', '>', now).executeTakeFirst();
}

/**
 * Claims a key for a new purchase: an insert against the key's primary key, which also takes over
 * a row whose lifetime is over. True when this request won the key; false when a live row has it
 * (another request's, in flight or answered), which the caller reads to decide what to answer.
 */
export async function claimIdempotencyKey(db: Db, row: IdempotencyRow, now: string): Promise<boolean> {
  const claimed = await db
    .insertInto('idempotency_keys')
    .values(row)
    .onConflict((oc) => oc.column('key').doUpdateSet(row).where('idempotency_keys.expires_at', '<=', now))
    .returning('key')
    .executeTakeFirst();
  return claimed !== undefined;
}

/**
 * A retry takes the key of an attempt that ended without a stored answer (a 5xx or a crash) once its
 * lock has run out: one conditional update, so of two retries at once only one drives the purchase.
 */
export async function relockIdempotencyKey(db: Db, key: string, bodyHash: string, now: string, lockedUntil: string): Promise<IdempotencyRow | undefined> {
  return db
    .updateTable('idempotency_keys')
    .set({ locked_until: lockedUntil })
    .where('key', '=', key)
    .where('body_hash', '=', bodyHash)
    .where('status_code', 'is', null)
    .where('locked_until', '<=', now)
    .where('expires_at', '>', now)
    .returningAll()
    .executeTakeFirst();
}

export async function updateIdempotencyKey(db: Db, key: string, changes: Updateable<TicketDatabase['idempotency_keys']>): Promise<void> {
  await db.updateTable('idempotency_keys').set(changes).where('key', '=', key).execute();
}

export async function deleteExpiredIdempotencyKeys(db: Db, now: string): Promise<number> {
  const result = await db.deleteFrom('idempotency_keys').where('expires_at', '<=', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}

// Release outbox

/**
 * Queues a release. `leasedUntil` is for a caller that tries it at once: no replica's outbox takes the
 * row before then (if the caller dies, it becomes due then); without it the row is due now.
 */
export async function enqueueRelease(db: Db, holdId: string, now: string, leasedUntil?: string, eventId?: number): Promise<number> {
  const row = await db
    .insertInto('release_outbox')
    .values({ hold_id: holdId, attempts: 0, next_attempt_at: leasedUntil ?? now, last_error: null, created_at: now, event_id: eventId ?? null })
    .returning('id')
    .executeTakeFirstOrThrow();
  ticketChanges.record(db, ({ figures }) => figures.addAt(OUTBOX, now, 1));
  return row.id;
}

export async function dueReleases(db: Db, now: string, limit: number): Promise<OutboxRow[]> {
  return db.selectFrom('release_outbox').selectAll().where('next_attempt_at', '<=', now).orderBy('next_attempt_at').limit(limit).execute();
}

/**
 * Takes a due release for one attempt: moves its `next_attempt_at` from the value read to the end of
 * the lease, so of several replicas that read the row only one wins it. True when this one did.
 */
export async function leaseRelease(db: Db, id: number, asRead: string, leasedUntil: string): Promise<boolean> {
  const result = await db.updateTable('release_outbox').set({ next_attempt_at: leasedUntil }).where('id', '=', id).where('next_attempt_at', '=', asRead).executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function completeRelease(db: Db, id: number): Promise<void> {
  // Two rounds may complete one release: only the one whose delete found the row counts it.
  const done = await db.deleteFrom('release_outbox').where('id', '=', id).returning('created_at').executeTakeFirst();
  if (done) ticketChanges.record(db, ({ figures }) => figures.addAt(OUTBOX, done.created_at, -1));
}

/** Makes a leased release due again at `dueAt` (an attempt abandoned by a shutdown). */
export async function returnLease(db: Db, id: number, dueAt: string): Promise<void> {
  await db.updateTable('release_outbox').set({ next_attempt_at: dueAt }).where('id', '=', id).execute();
}

export async function postponeRelease(db: Db, id: number, attempts: number, nextAttemptAt: string, error: string): Promise<void> {
  await db.updateTable('release_outbox').set({ attempts, next_attempt_at: nextAttemptAt, last_error: error }).where('id', '=', id).execute();
}
