/**
 * Waiting-list entries (DESIGN.md "Waiting list"): joining, reading, leaving, listing, closing an
 * event's list, and an admin's offer out of order. Offers and the gate are in waitlist-offers.ts.
 */
import { ServiceUnreachableError, type CallOrigin } from '../../openapi/client.js';
import type { components, operations } from '../../openapi/generated/ticket-service.js';
import { sameSecret } from '../../platform/auth.js';
import { ConflictError, NotFoundError, ProblemError, UnauthorizedError, UnavailableError, ValidationError } from '../../platform/errors.js';
import { pageById, type Page } from '../../platform/pagination.js';
import { newReference } from '../../platform/references.js';
import * as tickets from '../store/tickets.js';
import * as waitlist from '../store/waitlist.js';
import type { WaitlistEntryRow } from '../store/waitlist-schema.js';
import { unreachableText, type TicketServiceContext } from './context.js';
import { cancelTicket, type Access } from './tickets.js';
import { offerEntry, offerSeatsOf, sendGate, toApiEntry, type ApiWaitlistEntry } from './waitlist-offers.js';

type WaitlistJoin = components['schemas']['WaitlistJoin'];
type ListQuery = NonNullable<operations['listWaitlist']['parameters']['query']>;

/** Entries as the API shows them, each with its place in line (one query for the places of a page). */
export async function presentEntries(context: TicketServiceContext, rows: WaitlistEntryRow[]): Promise<ApiWaitlistEntry[]> {
  const waiting = rows.filter((row) => row.status === 'WAITING' || row.status === 'OFFERING');
  const positions = await waitlist.positionsOf(context.db, waiting);
  return rows.map((row) => toApiEntry(row, positions.get(row.id) ?? null));
}

/** The entry as the API shows it, with its place in line. */
export async function presentEntry(context: TicketServiceContext, row: WaitlistEntryRow): Promise<ApiWaitlistEntry> {
  const [entry] = await presentEntries(context, [row]);
  return entry as ApiWaitlistEntry;
}

/** Joins only while the public cannot buy the seats, and only if the event keeps a waiting list. */
export async function joinWaitlist(context: TicketServiceContext, body: WaitlistJoin, origin: CallOrigin): Promise<WaitlistEntryRow> {
  if (body.quantity > context.config.MAX_TICKETS_PER_ORDER) {
    throw new ValidationError([{ pointer: '#/quantity', detail: `must be <= ${context.config.MAX_TICKETS_PER_ORDER} (MAX_TICKETS_PER_ORDER)` }]);
  }
  let event;
  try {
    event = await context.events.call('getEvent', { path: { id: body.event_id } }, origin);
  } catch (error) {
    if (error instanceof ServiceUnreachableError) throw new UnavailableError(`${unreachableText(error)}; retry joining.`);
    throw error;
  }
  if (!event.ok) {
    if (event.status === 404) throw new NotFoundError(`Event ${body.event_id} does not exist.`);
    throw new UnavailableError(`event-service could not say whether event ${body.event_id} is sold out (HTTP ${event.status}); retry joining.`);
  }
  if (!event.body.waitlist_enabled) throw new ConflictError('conflict', `Event ${body.event_id} has no waiting list.`);
  const onSale = Math.max(0, event.body.available_tickets - event.body.waitlist_reserved_tickets);
  if (onSale >= body.quantity) {
    throw new ProblemError('seats-available', `Event ${body.event_id} has ${onSale} seat${onSale === 1 ? '' : 's'} on sale: buy them with POST /tickets instead.`, { available_tickets: onSale });
  }
  const row = await context.write(async (trx) => {
    const at = new Date().toISOString();
    const inserted = await waitlist.insertEntry(trx, {
      event_id: body.event_id,
      customer_name: body.customer_name,
      customer_email: body.customer_email,
      quantity: body.quantity,
      status: 'WAITING',
      reference: newReference(),
      offer_reference: null,
      ticket_id: null,
      offer_expires_at: null,
      created_at: at,
      updated_at: at,
    });
    if (inserted) await waitlist.moveGate(trx, body.event_id, { delta: body.quantity }, at);
    return inserted;
  });
  if (!row) throw new ConflictError('conflict', `${body.customer_email} is already on the waiting list of event ${body.event_id}.`);
  // Sent before the answer: the seats the entry asks for are kept from the public from now on.
  await sendGate(context, body.event_id, origin);
  // Seats may have come free between the check and the join (nobody else waits for them).
  void offerSeatsOf(context, body.event_id);
  return row;
}

/** An entry the caller may see: without the admin token its reference must match. */
export async function visibleEntry(context: TicketServiceContext, id: number, access: Access): Promise<WaitlistEntryRow> {
  const row = await waitlist.findEntry(context.db, id);
  if (access.needsReference) {
    const matches = row && access.reference !== undefined && sameSecret(access.reference, row.reference);
    if (!matches) throw new UnauthorizedError("This waiting-list entry needs the admin token or its reference in X-Ticket-Reference.");
  }
  if (!row) throw new NotFoundError(`Waiting-list entry ${id} does not exist.`);
  return row;
}

/** WAITING (or OFFERING) → LEFT gives the seats up; OFFERED → LEFT cancels the offer's ticket. An ended entry is answered as it is. */
export async function leaveWaitlist(context: TicketServiceContext, id: number, access: Access, origin: CallOrigin): Promise<WaitlistEntryRow> {
  const row = await visibleEntry(context, id, access);
  if (row.status === 'WAITING' || row.status === 'OFFERING') {
    const left = await context.write(async (trx) => {
      const at = new Date().toISOString();
      const done = await waitlist.updateEntryIf(trx, row.id, row.status, { status: 'LEFT', updated_at: at });
      if (done) await waitlist.moveGate(trx, row.event_id, { delta: -row.quantity }, at);
      return done;
    });
    if (!left) return leaveWaitlist(context, id, access, origin);
    await sendGate(context, row.event_id, origin);
    return left;
  }
  if (row.status === 'OFFERED') {
    const left = await context.write((trx) => waitlist.updateEntryIf(trx, row.id, 'OFFERED', { status: 'LEFT', updated_at: new Date().toISOString() }));
    if (!left) return leaveWaitlist(context, id, access, origin);
    const ticket = row.ticket_id === null ? undefined : await tickets.findTicket(context.db, row.ticket_id);
    if (ticket && (ticket.status === 'RESERVED' || ticket.status === 'CONFIRMED')) await cancelTicket(context, ticket, 'customer', { origin });
    return left;
  }
  return row;
}

export async function listWaitlist(context: TicketServiceContext, query: ListQuery): Promise<Page<WaitlistEntryRow>> {
  const filter: waitlist.EntryFilter = {};
  if (query.event_id !== undefined) filter.eventId = query.event_id;
  if (query.status !== undefined) filter.status = query.status;
  return pageById(
    query,
    (limit, position) => waitlist.selectEntryPage(context.db, filter, limit, position),
    () => waitlist.countEntries(context.db, filter),
  );
}

/** Every open entry of the event becomes CLOSED and its gate goes to 0 (sent before the answer). */
export async function closeWaitlist(context: TicketServiceContext, eventId: number, origin: CallOrigin): Promise<number> {
  const closed = await context.write(async (trx) => {
    const at = new Date().toISOString();
    const entries = await waitlist.closeEntries(trx, eventId, at);
    if (entries.length > 0 || (await waitlist.findGate(trx, eventId))) await waitlist.moveGate(trx, eventId, { absolute: 0 }, at);
    return entries.length;
  });
  if (!(await sendGate(context, eventId, origin))) throw new UnavailableError('The list is closed, but event-service has not taken its gate yet; the reconciler sends it (retrying is safe).');
  return closed;
}

/** An admin's offer now, out of order: 409 when the seats are not free. An OFFERED entry is answered as it is. */
export async function offerNow(context: TicketServiceContext, id: number, origin: CallOrigin): Promise<WaitlistEntryRow> {
  const row = await waitlist.findEntry(context.db, id);
  if (!row) throw new NotFoundError(`Waiting-list entry ${id} does not exist.`);
  if (row.status === 'OFFERED') return row;
  if (row.status !== 'WAITING') throw new ConflictError('conflict', `Waiting-list entry ${id} is ${row.status === 'OFFERING' ? 'being offered seats' : row.status}; only a WAITING entry can get an offer.`);
  const outcome = await offerEntry(context, row, origin);
  if (outcome === 'no-seats') throw new ConflictError('sold-out', `Event ${row.event_id} has not ${row.quantity} free seat${row.quantity === 1 ? '' : 's'} for entry ${id}; it keeps waiting.`);
  if (outcome === 'failed') throw new UnavailableError('event-service could not take the offer hold; the entry keeps waiting, retry the offer.');
  const now = await waitlist.findEntry(context.db, id);
  if (!now || now.status !== 'OFFERED') throw new ConflictError('conflict', `Waiting-list entry ${id} changed while it was being offered seats.`);
  return now;
}
