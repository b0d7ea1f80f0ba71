/** Queries on events and manual adjustments. Seat counters change only by conditional updates. */
import { sql, type Kysely, type SqlBool, type Expression, type ExpressionBuilder } from 'kysely';
import type { EventDatabase, EventRow, NewEventRow } from './schema.js';
import type { Cursor } from '../../platform/pagination.js';
import type { TextSearch } from './search.js';
import { prepareQuery } from '../../platform/store/prepared.js';
import { EVENTS, SEATS, eventChanges } from '../metrics.js';

type Db = Kysely<EventDatabase>;

export async function insertEvent(db: Db, row: NewEventRow): Promise<EventRow> {
  const inserted = await db.insertInto('events').values(row).returningAll().executeTakeFirstOrThrow();
  recordNewEvent(db, inserted);
  return inserted;
}

/** A new event adds its seats to the catalogue's figures (applied once committed). */
function recordNewEvent(db: Db, event: Pick<EventRow, 'total_tickets'>): void {
  eventChanges.record(db, ({ figures }) => {
    figures.add(EVENTS, 1);
    figures.add(SEATS.total, event.total_tickets);
  });
}

type EventAtVenue = Omit<NewEventRow, 'venue' | 'venue_id'> & { venue: string | undefined };

/**
 * Inserts the event linked to venue `venueId` only if that venue exists and holds its
 * `total_tickets`: the check is the insert's own condition (INSERT … SELECT … FROM venues WHERE
 * capacity >= total), so no earlier read of the venue can go stale before the write. The venue row
 * is read FOR SHARE: on PostgreSQL a shrink or delete of it under way is waited for and seen, and
 * one that comes later waits for this insert to commit. `venue` undefined takes the venue's name.
 * Undefined when nothing was inserted.
 */
export async function insertEventAtVenue(db: Db, row: EventAtVenue, venueId: number): Promise<EventRow | undefined> {
  const { venue, ...fields } = row;
  const columns = Object.keys(fields) as Array<keyof typeof fields>;
  const inserted = await db
    .insertInto('events')
    .columns([...columns, 'venue', 'venue_id'])
    .expression((eb) =>
      eb
        .selectFrom('venues')
        .select((v) => [...columns.map((column) => v.val(fields[column]).as(column)), venue === undefined ? v.ref('venues.name').as('venue') : v.val(venue).as('venue'), 'venues.id as venue_id'])
        .where('venues.id', '=', venueId)
        .where('venues.capacity', '>=', row.total_tickets)
        .forShare(),
    )
    .returningAll()
    .executeTakeFirst();
  if (inserted) recordNewEvent(db, inserted);
  return inserted;
}

const eventById = prepareQuery<EventDatabase, { id: number }, EventRow>((db, param) => db.selectFrom('events').selectAll().where('id', '=', param('id')));

export async function findEvent(db: Db, id: number): Promise<EventRow | undefined> {
  return eventById.takeFirst(db, { id });
}

/** The event, its row locked until the change that reads it commits (a change that decides on what it read). */
export async function findEventForUpdate(db: Db, id: number): Promise<EventRow | undefined> {
  return db.selectFrom('events').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
}

/**
 * Applies field changes. The new `total_tickets` moves `available_tickets` by its difference from the
 * stored total, computed in the statement itself (so a total another replica changed a moment ago is
 * not counted twice), and only if available seats stay at or above zero.
 */
export async function updateEventFields(
  db: Db,
  id: number,
  changes: Partial<Omit<EventRow, 'id' | 'version' | 'available_tickets' | 'held_tickets' | 'sold_tickets' | 'manual_reserved_tickets' | 'waitlist_reserved_tickets' | 'waitlist_sequence'>> & {
    total_tickets: number;
  },
): Promise<EventRow | undefined> {
  const availableAfter = sql<number>`available_tickets + ${changes.total_tickets} - total_tickets`;
  return db
    .updateTable('events')
    .set((eb) => ({ ...changes, available_tickets: availableAfter, version: eb('version', '+', 1) }))
    .where('id', '=', id)
    .where(availableAfter, '>=', 0)
    .returningAll()
    .executeTakeFirst();
}

export async function deleteEventWithoutLiveHolds(db: Db, id: number): Promise<boolean> {
  const result = await db
    .deleteFrom('events')
    .where('id', '=', id)
    .where('held_tickets', '=', 0)
    .where('sold_tickets', '=', 0)
    .returning(['total_tickets', 'manual_reserved_tickets'])
    .executeTakeFirst();
  if (result) {
    eventChanges.record(db, ({ figures }) => {
      figures.add(EVENTS, -1);
      figures.add(SEATS.total, -result.total_tickets);
      figures.add(SEATS.manual, -result.manual_reserved_tickets);
    });
  }
  return result !== undefined;
}

type SeatChange = { id: number; seats: number; now: string };
type TakenCounter = 'held_tickets' | 'manual_reserved_tickets';

/** Who a hold is for: the public stops at the waiting-list gate; an offer to the waiting list may take any available seat. */
export type HoldAudience = 'public' | 'waitlist';

/**
 * Whether `seats` are free for a hold of `audience`, as a condition on the event row: for the
 * public, `available_tickets − waitlist_reserved_tickets ≥ seats` (the gate); for an offer,
 * `available_tickets ≥ seats`. The one seat condition of hold creation: the hold insert's
 * precondition and the conditional decrement both use it, and so must any single-statement form of them.
 */
export function seatsFreeForHold(eb: ExpressionBuilder<EventDatabase, 'events'>, seats: number, audience: HoldAudience): Expression<SqlBool> {
  if (audience === 'waitlist') return eb('events.available_tickets', '>=', seats);
  return eb(eb('events.available_tickets', '-', eb.ref('events.waitlist_reserved_tickets')), '>=', seats);
}

/** The event's sales are open at `now` (no start or started, no end or not ended): the other condition of every hold. */
export function salesOpenAt(eb: ExpressionBuilder<EventDatabase, 'events'>, now: string): Expression<SqlBool> {
  return eb.and([eb.or([eb('events.sales_start', 'is', null), eb('events.sales_start', '<=', now)]), eb.or([eb('events.sales_end', 'is', null), eb('events.sales_end', '>=', now)])]);
}

/** The conditional decrement both ways of taking seats share; `seatsFree` is its seat condition. */
const seatTaking = (
  db: Db,
  param: <K extends keyof SeatChange>(name: K) => SeatChange[K],
  counter: TakenCounter,
  seatsFree: (eb: ExpressionBuilder<EventDatabase, 'events'>) => Expression<SqlBool>,
) =>
  db
    .updateTable('events')
    .set((eb) => ({
      available_tickets: eb('available_tickets', '-', param('seats')),
      [counter]: eb(counter, '+', param('seats')),
      updated_at: param('now'),
      version: eb('version', '+', 1),
    }))
    .where('id', '=', param('id'))
    .where(seatsFree);

const seatsForHold = (audience: HoldAudience) =>
  prepareQuery<EventDatabase, SeatChange, never>((db, param) =>
    seatTaking(db, param, 'held_tickets', (eb) => seatsFreeForHold(eb, param('seats'), audience)).where((eb) => salesOpenAt(eb, param('now'))),
  );
const seatsForHoldOf = { public: seatsForHold('public'), waitlist: seatsForHold('waitlist') };

/**
 * Holds `seats` if the event exists, its sales are open at `now` and that many are free for
 * `audience` (`seatsFreeForHold`); false when nothing was taken.
 */
export async function takeSeatsForHold(db: Db, id: number, seats: number, now: string, audience: HoldAudience = 'public'): Promise<boolean> {
  const result = await seatsForHoldOf[audience].execute(db, { id, seats, now });
  const taken = (result.numAffectedRows ?? 0n) > 0n;
  if (taken) eventChanges.record(db, ({ figures }) => figures.add(SEATS.held, seats));
  return taken;
}

const seatsForAdjustment = prepareQuery<EventDatabase, SeatChange, never>((db, param) =>
  seatTaking(db, param, 'manual_reserved_tickets', (eb) => eb('available_tickets', '>=', param('seats'))),
);

/**
 * Moves `seats` from available to the manually reserved ones (the original seat adjustment), only if
 * that many are available. A service call, like an offer hold: the waiting-list gate does not apply.
 */
export async function takeSeatsManually(db: Db, id: number, seats: number, now: string): Promise<boolean> {
  const result = await seatsForAdjustment.execute(db, { id, seats, now });
  const taken = (result.numAffectedRows ?? 0n) > 0n;
  if (taken) eventChanges.record(db, ({ figures }) => figures.add(SEATS.manual, seats));
  return taken;
}

/** Gives seats back from a taken counter, only if that counter holds at least that many. */
export async function returnSeats(
  db: Db,
  id: number,
  seats: number,
  counter: 'held_tickets' | 'sold_tickets' | 'manual_reserved_tickets',
  now: string,
): Promise<boolean> {
  const result = await db
    .updateTable('events')
    .set((eb) => ({ available_tickets: eb('available_tickets', '+', seats), [counter]: eb(counter, '-', seats), updated_at: now, version: eb('version', '+', 1) }))
    .where('id', '=', id)
    .where(counter, '>=', seats)
    .executeTakeFirst();
  const returned = result.numUpdatedRows > 0n;
  if (returned) eventChanges.record(db, ({ figures }) => figures.add(SEAT_COUNTERS[counter], -seats));
  return returned;
}

const SEAT_COUNTERS = { held_tickets: SEATS.held, sold_tickets: SEATS.sold, manual_reserved_tickets: SEATS.manual } as const;

/** A held seat becomes a sold one. */
export async function moveHeldToSold(db: Db, id: number, seats: number, now: string): Promise<boolean> {
  const result = await db
    .updateTable('events')
    .set((eb) => ({ held_tickets: eb('held_tickets', '-', seats), sold_tickets: eb('sold_tickets', '+', seats), updated_at: now, version: eb('version', '+', 1) }))
    .where('id', '=', id)
    .where('held_tickets', '>=', seats)
    .executeTakeFirst();
  const moved = result.numUpdatedRows > 0n;
  if (moved) {
    eventChanges.record(db, ({ figures }) => {
      figures.add(SEATS.held, -seats);
      figures.add(SEATS.sold, seats);
    });
  }
  return moved;
}

/** An event's waiting-list gate and the sequence of the value it came from. */
export type WaitlistGateRow = Pick<EventRow, 'id' | 'waitlist_reserved_tickets' | 'waitlist_sequence'>;

/**
 * Sets the event's gate to `reserved` if `sequence` is newer than the stored one, in one conditional
 * update (an older or equal sequence changes nothing); the gate after it, and whether it applied.
 * Undefined when the event does not exist.
 */
export async function setWaitlistGate(db: Db, id: number, reserved: number, sequence: number, now: string): Promise<{ gate: WaitlistGateRow; applied: boolean } | undefined> {
  const applied = await db
    .updateTable('events')
    .set((eb) => ({ waitlist_reserved_tickets: reserved, waitlist_sequence: sequence, updated_at: now, version: eb('version', '+', 1) }))
    .where('id', '=', id)
    .where('waitlist_sequence', '<', sequence)
    .returning(['id', 'waitlist_reserved_tickets', 'waitlist_sequence'])
    .executeTakeFirst();
  if (applied) return { gate: applied, applied: true };
  const current = await db.selectFrom('events').select(['id', 'waitlist_reserved_tickets', 'waitlist_sequence']).where('id', '=', id).executeTakeFirst();
  return current && { gate: current, applied: false };
}

export async function recordManualAdjustment(db: Db, eventId: number, delta: number, now: string): Promise<void> {
  await db.insertInto('manual_adjustments').values({ event_id: eventId, delta, created_at: now }).execute();
  eventChanges.record(db, (metrics) => metrics.manualAdjustments.inc({ operation: delta >= 0 ? 'reserve' : 'release' }));
}

/** An event's seat counters beside the sums of its hold and adjustment rows. */
export interface SeatLedgerRow {
  id: number;
  total_tickets: number;
  available_tickets: number;
  held_tickets: number;
  sold_tickets: number;
  manual_reserved_tickets: number;
  waitlist_reserved_tickets: number;
  waitlist_sequence: number;
  held_in_holds: number;
  committed_in_holds: number;
  manual_in_adjustments: number;
}

/** Where a page of seat ledgers starts: after (or, backwards, before) this event. */
export interface LedgerPosition {
  eventId: number;
  backwards: boolean;
}

/**
 * A page of seat ledgers in event id order, `limit + 1` rows. Counters and sums come from one
 * statement, so each row is one consistent moment (the sums use the holds (event_id, state) and
 * adjustments (event_id) indexes).
 */
export async function selectSeatLedgerPage(db: Db, eventId: number | undefined, limit: number, position: LedgerPosition | undefined): Promise<SeatLedgerRow[]> {
  const backwards = position?.backwards ?? false;
  let query = db
    .selectFrom('events')
    .select((eb) => {
      // An aggregate without GROUP BY is one row: null only when there is nothing to add up.
      const holdSeats = (state: 'HELD' | 'COMMITTED') =>
        eb.fn.coalesce(
          eb.selectFrom('holds').select((h) => h.fn.sum<number>('holds.quantity').as('seats')).whereRef('holds.event_id', '=', 'events.id').where('holds.state', '=', state),
          eb.lit(0),
        );
      const adjustedSeats = eb.fn.coalesce(
        eb.selectFrom('manual_adjustments').select((m) => m.fn.sum<number>('manual_adjustments.delta').as('seats')).whereRef('manual_adjustments.event_id', '=', 'events.id'),
        eb.lit(0),
      );
      return [
        'events.id',
        'events.total_tickets',
        'events.available_tickets',
        'events.held_tickets',
        'events.sold_tickets',
        'events.manual_reserved_tickets',
        'events.waitlist_reserved_tickets',
        'events.waitlist_sequence',
        holdSeats('HELD').as('held_in_holds'),
        holdSeats('COMMITTED').as('committed_in_holds'),
        adjustedSeats.as('manual_in_adjustments'),
      ];
    });
  if (eventId !== undefined) query = query.where('events.id', '=', eventId);
  if (position) query = query.where('events.id', backwards ? '<' : '>', position.eventId);
  return query.orderBy('events.id', backwards ? 'desc' : 'asc').limit(limit + 1).execute();
}

export async function maxTotalTicketsAtVenue(db: Db, venueId: number): Promise<number> {
  const row = await db
    .selectFrom('events')
    .select((eb) => eb.fn.max('total_tickets').as('max'))
    .where('venue_id', '=', venueId)
    .executeTakeFirst();
  return Number(row?.max ?? 0);
}

export type EventSort = 'event_date' | '-event_date' | 'name' | '-created_at';

export interface EventFilter {
  q?: string;
  venue?: string;
  venueId?: number;
  ids?: number[];
  from?: string;
  to?: string;
  available?: boolean;
}

const SORT_COLUMNS: Record<EventSort, { column: 'event_date' | 'name' | 'created_at'; descending: boolean }> = {
  event_date: { column: 'event_date', descending: false },
  '-event_date': { column: 'event_date', descending: true },
  name: { column: 'name', descending: false },
  '-created_at': { column: 'created_at', descending: true },
};

export const sortKey = (sort: EventSort, row: EventRow): string => row[SORT_COLUMNS[sort].column];

function filterConditions(eb: ExpressionBuilder<EventDatabase, 'events'>, search: TextSearch, filter: EventFilter): Expression<SqlBool> {
  const conditions: Expression<SqlBool>[] = [];
  if (filter.q !== undefined) conditions.push(search.matches(filter.q));
  // Over the lower(venue) index (migration 002).
  if (filter.venue !== undefined) conditions.push(eb(eb.fn('lower', ['venue']), '=', eb.fn('lower', [eb.val(filter.venue)])));
  if (filter.venueId !== undefined) conditions.push(eb('venue_id', '=', filter.venueId));
  if (filter.ids !== undefined) conditions.push(eb('id', 'in', filter.ids));
  if (filter.from !== undefined) conditions.push(eb('event_date', '>=', filter.from));
  if (filter.to !== undefined) conditions.push(eb('event_date', '<=', filter.to));
  // Seats the public can buy: beyond the waiting-list gate.
  if (filter.available) conditions.push(eb('available_tickets', '>', eb.ref('waitlist_reserved_tickets')));
  return eb.and(conditions);
}

/** The events with these ids in this order, or undefined if one of them no longer exists. */
export async function selectEventsInOrder(db: Db, ids: number[]): Promise<EventRow[] | undefined> {
  if (ids.length === 0) return [];
  const rows = await db.selectFrom('events').selectAll().where('id', 'in', ids).execute();
  const byId = new Map(rows.map((row) => [row.id, row]));
  const ordered = ids.map((id) => byId.get(id));
  return ordered.every((row) => row !== undefined) ? (ordered as EventRow[]) : undefined;
}

export async function countEvents(db: Db, search: TextSearch, filter: EventFilter): Promise<number> {
  const row = await db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where((eb) => filterConditions(eb, search, filter))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/**
 * One page of events in sort order, `limit + 1` rows so the caller knows whether more follow. A
 * cursor continues after (or before) a (key, id) position using the (key, id) indexes.
 */
export async function selectEventPage(
  db: Db,
  search: TextSearch,
  filter: EventFilter,
  sort: EventSort,
  limit: number,
  position: { cursor?: Cursor; offset: number },
): Promise<EventRow[]> {
  const { column, descending } = SORT_COLUMNS[sort];
  const backwards = position.cursor?.d === 'p';
  const ascending = descending === backwards;
  let query = db
    .selectFrom('events')
    .selectAll()
    .where((eb) => filterConditions(eb, search, filter));
  const cursor = position.cursor;
  if (cursor) {
    const after = ascending ? sql.raw('>') : sql.raw('<');
    query = query.where(sql<SqlBool>`(${sql.ref(column)}, id) ${after} (${cursor.k}, ${cursor.id})`);
  }
  query = query.orderBy(column, ascending ? 'asc' : 'desc').orderBy('id', ascending ? 'asc' : 'desc').limit(limit + 1);
  if (!cursor && position.offset > 0) query = query.offset(position.offset);
  return query.execute();
}
