/**
 * DESIGN.md's invariant, checked from outside through both services' APIs:
 * - per event, in one read: available = total − held − sold − manual, and available ≥ 0; the hold rows
 *   add up to the event's held and sold counts (for events not changed within the settle window);
 * - across services, for records older than the settle window: RESERVED ↔ HELD, CONFIRMED ↔ COMMITTED
 *   (same id, event and quantity), CANCELLED has no live hold, every live hold has its ticket.
 * Holds are read, then tickets, then holds again; only what both hold reads show is reported, so
 * purchases in flight are not.
 */
import { nextCursor, type EventOperations, type Problem, type ServiceClient, type TicketOperations } from '../openapi/client.js';
import { ApiRefusal } from './output.js';
import type { components as EventComponents } from '../openapi/generated/event-service.js';
import type { components as TicketComponents } from '../openapi/generated/ticket-service.js';

type Hold = EventComponents['schemas']['Hold'];
type Event = EventComponents['schemas']['Event'];
type Ticket = TicketComponents['schemas']['Ticket'];

export interface AuditReport {
  problems: string[];
  events: number;
  tickets: number;
  holds: number;
}

async function readAll<T>(fetchPage: (cursor: string | undefined) => Promise<{ ok: boolean; body?: unknown; problem?: Problem; status: number; headers: Record<string, string | string[] | undefined> }>, what: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await fetchPage(cursor);
    if (!page.ok) {
      const problem = page.problem ?? { type: 'about:blank', title: `HTTP ${page.status}`, status: page.status };
      throw new ApiRefusal(page.status, { ...problem, detail: `reading ${what}: ${problem.detail ?? problem.title}` });
    }
    items.push(...(page.body as T[]));
    cursor = nextCursor(page.headers);
    if (!cursor) return items;
  }
}

export async function auditSystem(events: ServiceClient<EventOperations>, tickets: ServiceClient<TicketOperations>, settleSeconds: number): Promise<AuditReport> {
  const problems: string[] = [];
  const settledBefore = new Date(Date.now() - settleSeconds * 1000).toISOString();
  const readHolds = () =>
    readAll<Hold>((cursor) => events.call('listHolds', { query: { state: 'HELD,COMMITTED', older_than: settleSeconds, limit: 1000, ...(cursor ? { cursor } : {}) } }), 'holds');

  const firstHolds = await readHolds();
  const allTickets = await readAll<Ticket>((cursor) => tickets.call('listTickets', { query: { limit: 1000, ...(cursor ? { cursor } : {}) } }), 'tickets');
  const secondHolds = await readHolds();
  const allEvents = await readAll<Event>((cursor) => events.call('listEvents', { query: { limit: 1000, ...(cursor ? { cursor } : {}) } }), 'events');

  const first = new Map(firstHolds.map((h) => [h.hold_id, h]));
  const second = new Map(secondHolds.map((h) => [h.hold_id, h]));
  const ticketByReference = new Map(allTickets.map((t) => [t.reference, t]));

  for (const event of allEvents) {
    const expected = event.total_tickets - event.held_tickets - event.sold_tickets - event.manual_reserved_tickets;
    if (event.available_tickets !== expected) {
      problems.push(`event ${event.id}: available_tickets ${event.available_tickets} ≠ total ${event.total_tickets} − held ${event.held_tickets} − sold ${event.sold_tickets} − manual ${event.manual_reserved_tickets} = ${expected}`);
    }
    if (event.available_tickets < 0) problems.push(`event ${event.id}: available_tickets is negative (${event.available_tickets})`);
  }
  if (settleSeconds === 0) {
    // With no settle window every hold is in the reads: the rows must add up to each event's counts.
    const sums = new Map<number, { held: number; sold: number }>();
    for (const hold of secondHolds) {
      if (hold.event_id === null || first.get(hold.hold_id)?.state !== hold.state) continue;
      const sum = sums.get(hold.event_id) ?? { held: 0, sold: 0 };
      if (hold.state === 'HELD') sum.held += hold.quantity;
      else sum.sold += hold.quantity;
      sums.set(hold.event_id, sum);
    }
    for (const event of allEvents) {
      if (event.updated_at > settledBefore) continue;
      const sum = sums.get(event.id) ?? { held: 0, sold: 0 };
      if (sum.held !== event.held_tickets || sum.sold !== event.sold_tickets) {
        problems.push(`event ${event.id}: holds add up to ${sum.held} held and ${sum.sold} sold, the event says ${event.held_tickets} and ${event.sold_tickets}`);
      }
    }
  }

  const wanted: Record<string, string> = { RESERVED: 'HELD', CONFIRMED: 'COMMITTED' };
  for (const ticket of allTickets) {
    if (ticket.updated_at > settledBefore) continue;
    const a = first.get(ticket.reference);
    const b = second.get(ticket.reference);
    const state = wanted[ticket.status];
    if (state === undefined) {
      if (a && b) problems.push(`ticket ${ticket.id} is CANCELLED but its hold ${ticket.reference} is still ${b.state}`);
      continue;
    }
    const matches = (h: Hold | undefined) => h !== undefined && h.state === state && h.event_id === ticket.event_id && h.quantity === ticket.quantity;
    if (!matches(a) && !matches(b)) {
      const seen = b ?? a;
      problems.push(
        seen
          ? `ticket ${ticket.id} is ${ticket.status} (event ${ticket.event_id}, ${ticket.quantity} seats) but its hold is ${seen.state} (event ${seen.event_id}, ${seen.quantity} seats)`
          : `ticket ${ticket.id} is ${ticket.status} but has no ${state} hold ${ticket.reference}`,
      );
    }
  }
  for (const hold of secondHolds) {
    if (!first.has(hold.hold_id) || hold.updated_at > settledBefore) continue;
    const ticket = ticketByReference.get(hold.hold_id);
    if (!ticket) problems.push(`hold ${hold.hold_id} (${hold.state}, event ${hold.event_id}, ${hold.quantity} seats) has no ticket`);
  }
  return { problems, events: allEvents.length, tickets: allTickets.length, holds: secondHolds.length };
}
