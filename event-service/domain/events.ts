/** Events: creation with prices and venue links, partial updates that move availability, deletion, search. */
import type { Transaction } from 'kysely';
import type { components, operations } from '../../openapi/generated/event-service.js';
import { ConflictError, NotFoundError, ProblemError, ValidationError, type FieldError } from '../../platform/errors.js';
import { decodeCursor, pageFromRows, type Cursor, type Page } from '../../platform/pagination.js';
import { nowIso, parseDateField } from '../../platform/time.js';
import * as events from '../store/events.js';
import { findVenue, findVenueForShare } from '../store/venues.js';
import type { EventDatabase, EventRow } from '../store/schema.js';
import type { EventServiceContext } from './context.js';
import { isKnownCurrency, majorToMinor } from './money.js';
import { count as plural, were } from '../../platform/words.js';
import { SEATS, eventChanges } from '../metrics.js';

type EventCreate = components['schemas']['EventCreate'];
type EventUpdate = components['schemas']['EventUpdate'];
type ListQuery = NonNullable<operations['listEvents']['parameters']['query']>;

interface Priced {
  ticket_price?: number;
  price_per_ticket?: number;
  currency?: string;
  timezone?: string;
  sales_start?: string | null;
  sales_end?: string | null;
  event_date?: string;
}

/** Checks and normalises the fields shared by create and update; collects every problem. */
function normaliseCommonFields(input: Priced, current: Pick<EventRow, 'currency' | 'sales_start' | 'sales_end'> | undefined, defaultCurrency: string, errors: FieldError[]) {
  const currency = input.currency ?? current?.currency ?? defaultCurrency;
  let ticketPrice = input.ticket_price;
  if (input.price_per_ticket !== undefined && isKnownCurrency(currency)) {
    const fromAlias = majorToMinor(input.price_per_ticket, currency, '#/price_per_ticket', errors);
    if (ticketPrice !== undefined && fromAlias !== undefined && fromAlias !== ticketPrice) {
      errors.push({ pointer: '#/price_per_ticket', detail: 'disagrees with ticket_price; send only ticket_price' });
    }
    ticketPrice ??= fromAlias;
  }
  const eventDate = input.event_date === undefined ? undefined : parseDateField(input.event_date, '#/event_date', errors);
  const salesStart = input.sales_start === undefined ? current?.sales_start : input.sales_start === null ? null : parseDateField(input.sales_start, '#/sales_start', errors);
  const salesEnd = input.sales_end === undefined ? current?.sales_end : input.sales_end === null ? null : parseDateField(input.sales_end, '#/sales_end', errors);
  if (salesStart && salesEnd && salesStart >= salesEnd) errors.push({ pointer: '#/sales_end', detail: 'must be after sales_start' });
  return { currency, ticketPrice, eventDate, salesStart, salesEnd };
}

/** The venue an event links to; `find` may lock it (inside a change) so its capacity holds until the commit. */
async function linkedVenue(context: EventServiceContext, venueId: number | null | undefined, errors: FieldError[], find = findVenue) {
  if (venueId === null || venueId === undefined) return undefined;
  const venue = await find(context.db, venueId);
  if (!venue) {
    errors.push({ pointer: '#/venue_id', detail: `no venue has id ${venueId}` });
    return undefined;
  }
  return venue;
}

type Venue = { id: number; name: string; capacity: number };

const capacityExceeded = (venue: Venue, totalTickets: number): ConflictError =>
  new ConflictError('capacity-exceeded', `total_tickets ${totalTickets} exceeds the capacity ${venue.capacity} of venue ${venue.id} (${venue.name}).`);

function assertWithinCapacity(venue: Venue | undefined, totalTickets: number): void {
  if (venue && totalTickets > venue.capacity) throw capacityExceeded(venue, totalTickets);
}

/** Why an event could not be inserted at a venue: there is no such venue, or it is too small. */
async function venueRefusal(context: EventServiceContext, venueId: number, totalTickets: number): Promise<ProblemError> {
  const errors: FieldError[] = [];
  const venue = await linkedVenue(context, venueId, errors);
  return venue ? capacityExceeded(venue, totalTickets) : new ValidationError(errors);
}

/**
 * Creates an event. A linked venue is checked by the insert itself (one conditional statement
 * inside the write), so a venue deleted or shrunk at the same moment either comes first, and the
 * create is refused, or comes after and sees the event. On SQLite the write transaction makes that
 * atomic; on PostgreSQL at READ COMMITTED the statement's venue select takes FOR SHARE, so that a
 * shrink (which writes the venue row before it counts the events) or a delete (which locks it first)
 * and this insert wait for each other instead of missing each other.
 */
export async function createEvent(context: EventServiceContext, input: EventCreate): Promise<EventRow> {
  const errors: FieldError[] = [];
  const common = normaliseCommonFields(input, undefined, context.config.DEFAULT_CURRENCY, errors);
  if (errors.length > 0) {
    // Every invalid field at once, the venue link too (its final check is the insert's own).
    await linkedVenue(context, input.venue_id, errors);
    throw new ValidationError(errors);
  }
  const now = nowIso();
  const row = {
    name: input.name,
    description: input.description ?? '',
    event_date: common.eventDate as string,
    total_tickets: input.total_tickets,
    available_tickets: input.total_tickets,
    ticket_price: common.ticketPrice ?? context.config.DEFAULT_TICKET_PRICE,
    currency: common.currency,
    timezone: input.timezone ?? 'UTC',
    image_url: input.image_url ?? null,
    sales_start: common.salesStart ?? null,
    sales_end: common.salesEnd ?? null,
    waitlist_enabled: input.waitlist_enabled === false ? 0 : 1,
    created_at: now,
    updated_at: now,
  };
  const venueId = input.venue_id;
  return changeCatalogue(context, async (trx) => {
    if (venueId === undefined || venueId === null) return events.insertEvent(trx, { ...row, venue: input.venue ?? '', venue_id: null });
    const inserted = await events.insertEventAtVenue(trx, { ...row, venue: input.venue }, venueId);
    if (inserted) return inserted;
    throw await venueRefusal({ ...context, db: trx }, venueId, input.total_tickets);
  });
}

/** A write that creates, changes or deletes an event, which text search pages depend on. */
function changeCatalogue<T>(context: EventServiceContext, work: (trx: Transaction<EventDatabase>) => Promise<T>): Promise<T> {
  return context.searchPages.change(() => context.write(work));
}

export async function getEvent(context: EventServiceContext, id: number): Promise<EventRow> {
  const row = await events.findEvent(context.db, id);
  if (!row) throw new NotFoundError(`Event ${id} does not exist.`);
  return row;
}

/**
 * Partial update. Read-only fields in the body are ignored (GET-modify-PUT). A new `total_tickets`
 * moves `available_tickets` by the same amount in one conditional update, never below zero. The
 * If-Match and venue checks decide on what was read, so the event row is read FOR UPDATE and its
 * venue FOR SHARE (events, then venues): on PostgreSQL no other change can slip in before the commit.
 */
export async function updateEvent(context: EventServiceContext, id: number, input: EventUpdate, ifMatch: string | undefined): Promise<EventRow> {
  return changeCatalogue(context, async (trx) => {
    const scoped = { ...context, db: trx };
    const current = await events.findEventForUpdate(trx, id);
    if (!current) throw new NotFoundError(`Event ${id} does not exist.`);
    if (ifMatch !== undefined && !etagMatches(ifMatch, current.version)) {
      throw new ProblemError('precondition-failed', `Event ${id} is at version "${current.version}", not ${ifMatch}.`);
    }
    const errors: FieldError[] = [];
    const common = normaliseCommonFields(input, current, context.config.DEFAULT_CURRENCY, errors);
    const totalTickets = input.total_tickets ?? current.total_tickets;
    const venueId = input.venue_id === undefined ? current.venue_id : input.venue_id;
    const venue = await linkedVenue(scoped, venueId, errors, findVenueForShare);
    if (errors.length > 0) throw new ValidationError(errors);
    assertWithinCapacity(venue, totalTickets);
    const changes: Parameters<typeof events.updateEventFields>[2] = { updated_at: nowIso(), total_tickets: totalTickets };
    if (input.name !== undefined) changes.name = input.name;
    if (input.description !== undefined) changes.description = input.description;
    if (common.eventDate !== undefined) changes.event_date = common.eventDate;
    if (input.venue !== undefined) changes.venue = input.venue;
    else if (input.venue_id !== undefined && venue && input.venue_id !== current.venue_id) changes.venue = venue.name;
    if (input.venue_id !== undefined) changes.venue_id = input.venue_id;
    if (common.ticketPrice !== undefined) changes.ticket_price = common.ticketPrice;
    if (input.currency !== undefined) changes.currency = input.currency;
    if (input.timezone !== undefined) changes.timezone = input.timezone;
    if (input.image_url !== undefined) changes.image_url = input.image_url;
    if (input.sales_start !== undefined) changes.sales_start = common.salesStart ?? null;
    if (input.sales_end !== undefined) changes.sales_end = common.salesEnd ?? null;
    if (input.waitlist_enabled !== undefined) changes.waitlist_enabled = input.waitlist_enabled ? 1 : 0;
    const updated = await events.updateEventFields(trx, id, changes);
    if (!updated) {
      const taken = current.total_tickets - current.available_tickets;
      throw new ConflictError('conflict', `total_tickets cannot go below the ${taken} seats already held, sold or reserved (asked for ${totalTickets}).`);
    }
    eventChanges.record(trx, ({ figures }) => figures.add(SEATS.total, updated.total_tickets - current.total_tickets));
    return updated;
  });
}

/** RFC 9110 If-Match: `*` matches any version; otherwise one of the listed (strong) tags must be current. */
function etagMatches(header: string, version: number): boolean {
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim() === `"${version}"`);
}

export async function deleteEvent(context: EventServiceContext, id: number): Promise<void> {
  await changeCatalogue(context, async (trx) => {
    if (await events.deleteEventWithoutLiveHolds(trx, id)) return;
    const row = await getEvent({ ...context, db: trx }, id);
    throw new ConflictError('in-use', `Event ${id} still has seats taken (${row.held_tickets} reserved, ${row.sold_tickets} sold); cancel its tickets first (eventsync events delete ${id} --cancel-tickets).`);
  });
}

/** The original seat adjustment, recorded as a manual adjustment. */
export async function adjustTickets(context: EventServiceContext, id: number, operation: 'reserve' | 'release', count: number): Promise<EventRow> {
  return context.write(async (trx) => {
    const now = nowIso();
    const changed =
      operation === 'reserve'
        ? await events.takeSeatsManually(trx, id, count, now)
        : await events.returnSeats(trx, id, count, 'manual_reserved_tickets', now);
    const row = await getEvent({ ...context, db: trx }, id);
    if (!changed) {
      throw operation === 'reserve'
        ? new ConflictError('sold-out', `Event ${id} has ${plural(row.available_tickets, 'seat')} available; ${were(count)} asked for.`)
        : new ConflictError('conflict', `Only ${plural(row.manual_reserved_tickets, 'manually reserved seat')} of event ${id} can be released; ${were(count)} asked for.`);
    }
    await events.recordManualAdjustment(trx, id, operation === 'reserve' ? count : -count, now);
    return row;
  });
}

export async function listEvents(context: EventServiceContext, query: ListQuery): Promise<Page<EventRow>> {
  const errors: FieldError[] = [];
  const from = query.from === undefined ? undefined : parseDateField(query.from, 'from', errors);
  const to = query.to === undefined ? undefined : parseDateField(query.to, 'to', errors);
  if (errors.length > 0) throw new ValidationError(errors);
  const filter: events.EventFilter = {};
  if (query.q !== undefined) filter.q = query.q;
  if (query.venue !== undefined) filter.venue = query.venue;
  if (query.venue_id !== undefined) filter.venueId = query.venue_id;
  if (query.ids !== undefined) filter.ids = [...new Set(query.ids.split(',').map(Number))];
  if (from !== undefined) filter.from = from;
  if (to !== undefined) filter.to = to;
  if (query.available === true) filter.available = true;
  const sort = query.sort ?? 'event_date';
  const limit = query.limit ?? 100;
  const offset = query.offset ?? 0;
  const cursor = decodeCursor(query.cursor);
  // A text search that does not filter on seat counters is cached; the key names the whole page.
  const key = filter.q === undefined || filter.available || filter.ids !== undefined ? undefined : JSON.stringify([filter, sort, limit, offset, query.cursor ?? null]);
  const read = async () => {
    const { rows, total } = await searchOrList(context, filter, sort, limit, { cursor, offset }, key);
    const page = pageFromRows(rows, { limit, cursor, offset, position: (row) => ({ k: events.sortKey(sort, row), id: row.id }) });
    page.total = total;
    return page;
  };
  return key !== undefined && limit <= 100 ? context.searchResults.through(key, read) : read();
}

/**
 * The rows of one page (`limit + 1`) and the total. Text searches (a `cacheKey`) are cached in two
 * layers, both coherent (platform/read-cache.ts): here, which events make up the page and the
 * total, until an event is created, changed or deleted, so that between seat changes only the rows
 * are read again; in `listEvents`, whole pages of up to 100 events until the next write of any kind.
 * Both pay in the search bench: without them a repeated search is more than ten times slower.
 */
async function searchOrList(
  context: EventServiceContext,
  filter: events.EventFilter,
  sort: events.EventSort,
  limit: number,
  position: { cursor?: Cursor; offset: number },
  cacheKey: string | undefined,
): Promise<{ rows: EventRow[]; total: number }> {
  const compute = async () => {
    const rows = await events.selectEventPage(context.db, context.search, filter, sort, limit, position);
    return { rows, total: await events.countEvents(context.db, context.search, filter) };
  };
  if (cacheKey === undefined) return compute();
  let computed: { rows: EventRow[]; total: number } | undefined;
  const found = await context.searchPages.through(cacheKey, async () => {
    computed = await compute();
    return { ids: computed.rows.map((row) => row.id), total: computed.total };
  });
  if (computed) return computed;
  const rows = await events.selectEventsInOrder(context.db, found.ids);
  // An event of the page went away after it was cached (its deletion is still being committed).
  return rows ? { rows, total: found.total } : compute();
}
