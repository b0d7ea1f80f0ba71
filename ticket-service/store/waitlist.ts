/**
 * Queries on the waiting list: entries (every status change a conditional update, the join an insert
 * against the open-entry unique index) and each event's gate (moved by the same transactions that
 * change its demand, with a sequence that only grows).
 */
import type { Kysely, Updateable } from 'kysely';
import type { Cursor } from '../../platform/pagination.js';
import { ticketChanges, waitlistFigure } from '../metrics.js';
import type { TicketDatabase } from './schema.js';
import type { WaitlistEntryRow, WaitlistEntryTable, WaitlistGateRow, WaitlistStatus } from './waitlist-schema.js';

type Db = Kysely<TicketDatabase>;

/** The statuses whose entries the gate counts (the seats the list still asks for). */
export const DEMAND_STATUSES: WaitlistStatus[] = ['WAITING', 'OFFERING'];
/** Open entries: one per event and email. */
export const OPEN_STATUSES: WaitlistStatus[] = ['WAITING', 'OFFERING', 'OFFERED'];

/** The waiting-list figures by status move once the change is committed (OFFERING counts as WAITING, as the API shows it). */
function recordEntryChange(db: Db, from: WaitlistStatus | undefined, to: WaitlistStatus): void {
  if (from === to) return;
  ticketChanges.record(db, ({ figures }) => {
    if (from !== undefined) figures.add(waitlistFigure(from), -1);
    figures.add(waitlistFigure(to), 1);
  });
}

export type NewEntry = Omit<WaitlistEntryRow, 'id'>;

/** Inserts an entry unless an open one exists for the event and email (any case): undefined then. */
export async function insertEntry(db: Db, entry: NewEntry): Promise<WaitlistEntryRow | undefined> {
  const inserted = await db
    .insertInto('waitlist_entries')
    .values(entry)
    .onConflict((oc) => oc.doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) recordEntryChange(db, undefined, inserted.status);
  return inserted;
}

export async function findEntry(db: Db, id: number): Promise<WaitlistEntryRow | undefined> {
  return db.selectFrom('waitlist_entries').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Changes an entry only while it is in `from` (and, if given, still has that offer reference); undefined if it had moved on. */
export async function updateEntryIf(db: Db, id: number, from: WaitlistStatus, changes: Updateable<WaitlistEntryTable>, offerReference?: string): Promise<WaitlistEntryRow | undefined> {
  let query = db.updateTable('waitlist_entries').set(changes).where('id', '=', id).where('status', '=', from);
  if (offerReference !== undefined) query = query.where('offer_reference', '=', offerReference);
  const row = await query.returningAll().executeTakeFirst();
  if (row) recordEntryChange(db, from, row.status);
  return row;
}

/**
 * An OFFERING entry left by a crash, back to WAITING if it is still that offer and still older than
 * `cutoff` (an offer that moved on meanwhile is not undone). Its status figure does not move: OFFERING
 * counts with WAITING.
 */
export async function undoStaleOffering(db: Db, id: number, offerReference: string, cutoff: string, at: string): Promise<boolean> {
  const undone = await db
    .updateTable('waitlist_entries')
    .set({ status: 'WAITING', updated_at: at })
    .where('id', '=', id)
    .where('status', '=', 'OFFERING')
    .where('offer_reference', '=', offerReference)
    .where('updated_at', '<', cutoff)
    .executeTakeFirst();
  return undone.numUpdatedRows > 0n;
}

/** What event-service takes for an event's gate (`PUT /events/{id}/waitlist-gate`, or beside a release). */
export const gateBody = (gate: Pick<WaitlistGateRow, 'reserved' | 'sequence'>) => ({ waitlist_reserved_tickets: Math.max(0, gate.reserved), sequence: gate.sequence });

/** The OFFERED entry whose offer is this ticket, moved to `to`; undefined when there is none. */
export async function endOfferOfTicket(db: Db, ticketId: number, to: WaitlistStatus, at: string): Promise<WaitlistEntryRow | undefined> {
  const row = await db
    .updateTable('waitlist_entries')
    .set({ status: to, updated_at: at })
    .where('ticket_id', '=', ticketId)
    .where('status', '=', 'OFFERED')
    .returningAll()
    .executeTakeFirst();
  if (row) recordEntryChange(db, 'OFFERED', to);
  return row;
}

/** Every open entry of the event becomes CLOSED; the entries closed. */
export async function closeEntries(db: Db, eventId: number, at: string): Promise<Array<Pick<WaitlistEntryRow, 'id' | 'status' | 'quantity'>>> {
  const open = await db.selectFrom('waitlist_entries').select(['id', 'status', 'quantity']).where('event_id', '=', eventId).where('status', 'in', OPEN_STATUSES).execute();
  const closed: Array<Pick<WaitlistEntryRow, 'id' | 'status' | 'quantity'>> = [];
  for (const entry of open) {
    const done = await db.updateTable('waitlist_entries').set({ status: 'CLOSED', updated_at: at }).where('id', '=', entry.id).where('status', '=', entry.status).executeTakeFirst();
    if (done.numUpdatedRows > 0n) {
      closed.push(entry);
      recordEntryChange(db, entry.status, 'CLOSED');
    }
  }
  return closed;
}

/** Each entry's place in its event's line among those still waiting (1 is next), in one query for a page. */
export async function positionsOf(db: Db, entries: ReadonlyArray<Pick<WaitlistEntryRow, 'id'>>): Promise<Map<number, number>> {
  if (entries.length === 0) return new Map();
  const rows = await db
    .selectFrom('waitlist_entries as w')
    .select((eb) => [
      'w.id',
      eb
        .selectFrom('waitlist_entries as ahead')
        .select((inner) => inner.fn.countAll<number>().as('n'))
        .whereRef('ahead.event_id', '=', 'w.event_id')
        .where('ahead.status', 'in', DEMAND_STATUSES)
        .whereRef('ahead.id', '<', 'w.id')
        .as('ahead'),
    ])
    .where('w.id', 'in', entries.map((entry) => entry.id))
    .execute();
  return new Map(rows.map((row) => [row.id, Number(row.ahead) + 1]));
}

export interface EntryFilter {
  eventId?: number;
  status?: WaitlistStatus;
}

export async function selectEntryPage(db: Db, filter: EntryFilter, limit: number, position: { cursor?: Cursor; offset: number }): Promise<WaitlistEntryRow[]> {
  const backwards = position.cursor?.d === 'p';
  let query = db.selectFrom('waitlist_entries').selectAll();
  // OFFERING shows as WAITING.
  if (filter.status) query = query.where('status', 'in', filter.status === 'WAITING' ? DEMAND_STATUSES : [filter.status]);
  if (filter.eventId !== undefined) query = query.where('event_id', '=', filter.eventId);
  if (position.cursor) query = query.where('id', backwards ? '<' : '>', Number(position.cursor.id));
  query = query.orderBy('id', backwards ? 'desc' : 'asc').limit(limit + 1);
  if (!position.cursor && position.offset > 0) query = query.offset(position.offset);
  return query.execute();
}

export async function countEntries(db: Db, filter: EntryFilter): Promise<number> {
  let query = db.selectFrom('waitlist_entries').select((eb) => eb.fn.countAll<number>().as('count'));
  if (filter.status) query = query.where('status', 'in', filter.status === 'WAITING' ? DEMAND_STATUSES : [filter.status]);
  if (filter.eventId !== undefined) query = query.where('event_id', '=', filter.eventId);
  return Number((await query.executeTakeFirstOrThrow()).count);
}

/** The event's WAITING entries in line order. */
export async function waitingEntries(db: Db, eventId: number, limit: number): Promise<WaitlistEntryRow[]> {
  return db.selectFrom('waitlist_entries').selectAll().where('event_id', '=', eventId).where('status', '=', 'WAITING').orderBy('id').limit(limit).execute();
}

/**
 * Events with someone waiting: of the events with a gate (every event that ever had a waiting list),
 * those with a WAITING entry, one index probe each (a DISTINCT over the entries read every WAITING entry
 * of every event each round).
 */
export async function eventsWithWaiting(db: Db, limit: number): Promise<number[]> {
  const rows = await db
    .selectFrom('waitlist_gates as g')
    .select('g.event_id')
    .where((eb) => eb.exists(eb.selectFrom('waitlist_entries as e').select('e.id').whereRef('e.event_id', '=', 'g.event_id').where('e.status', '=', 'WAITING')))
    .orderBy('g.event_id')
    .limit(limit)
    .execute();
  return rows.map((r) => r.event_id);
}

/** OFFERING entries not touched since `before` (an offer whose process died between its steps). */
export async function staleOfferings(db: Db, before: string, limit: number): Promise<WaitlistEntryRow[]> {
  return db.selectFrom('waitlist_entries').selectAll().where('status', '=', 'OFFERING').where('updated_at', '<', before).orderBy('updated_at').limit(limit).execute();
}

// The gate

/**
 * Moves the event's gate by `delta` seats (or sets it, with `absolute`) and its sequence by one, in
 * the transaction of the change: the upsert takes the gate row's lock, so changes of one event's
 * demand are applied one after the other, and each sequence has exactly one value.
 */
export async function moveGate(db: Db, eventId: number, change: { delta: number } | { absolute: number }, at: string): Promise<WaitlistGateRow> {
  const initial = 'delta' in change ? Math.max(0, change.delta) : change.absolute;
  return db
    .insertInto('waitlist_gates')
    .values({ event_id: eventId, reserved: initial, sequence: 1, sent_sequence: 0, updated_at: at })
    .onConflict((oc) =>
      oc.column('event_id').doUpdateSet((eb) => ({
        reserved: 'delta' in change ? eb('waitlist_gates.reserved', '+', change.delta) : change.absolute,
        sequence: eb('waitlist_gates.sequence', '+', 1),
        updated_at: at,
      })),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findGate(db: Db, eventId: number): Promise<WaitlistGateRow | undefined> {
  return db.selectFrom('waitlist_gates').selectAll().where('event_id', '=', eventId).executeTakeFirst();
}

/** The gate of the event a hold (a ticket's or an offer's reference) belongs to, if that event has one. */
export async function gateForHold(db: Db, holdId: string): Promise<WaitlistGateRow | undefined> {
  // One read per release: the event comes from the ticket, else the offer's entry, else (a deleted
  // ticket, an orphan hold: nothing else has the reference any more) the queued release itself.
  return db
    .selectFrom('waitlist_gates')
    .selectAll()
    .where('event_id', '=', (eb) =>
      eb.fn.coalesce(
        eb.selectFrom('tickets').select('event_id').where('reference', '=', holdId).limit(1),
        eb.selectFrom('waitlist_entries').select('event_id').where('offer_reference', '=', holdId).limit(1),
        eb.selectFrom('release_outbox').select('event_id').where('hold_id', '=', holdId).where('event_id', 'is not', null).limit(1),
      ),
    )
    .executeTakeFirst();
}

/** Records that event-service has the gate up to `sequence`. */
export async function markGateSent(db: Db, eventId: number, sequence: number): Promise<void> {
  await db.updateTable('waitlist_gates').set({ sent_sequence: sequence }).where('event_id', '=', eventId).where('sent_sequence', '<', sequence).execute();
}

/** Gates with a value event-service has not acknowledged. */
export async function unsentGates(db: Db, limit: number): Promise<WaitlistGateRow[]> {
  return db.selectFrom('waitlist_gates').selectAll().whereRef('sent_sequence', '<', 'sequence').orderBy('updated_at').limit(limit).execute();
}
