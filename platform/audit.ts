/**
 * DESIGN.md's invariant, checked from outside through both services' APIs. The one checker that
 * `eventsync audit`, the tests and the benchmarks use:
 * - per event, from its seat ledger (counters and the sums of its rows, read in one statement, so at
 *   any moment and whatever the settle window): available = total − Σ HELD − Σ COMMITTED − Σ manual
 *   adjustments, each counter equals its sum, and available ≥ 0;
 * - across services, for records older than the settle window: RESERVED ↔ HELD, CONFIRMED ↔ COMMITTED
 *   (same id, event and quantity), CANCELLED has no live hold, every live hold has its ticket.
 *   Holds are read, then tickets, then holds again; only what both hold reads show is reported, so
 *   purchases in flight are not;
 * - per event whose waiting list has not changed within the settle window, the gate event-service
 *   applies (`waitlist_reserved_tickets`) equals the seats its WAITING entries ask for.
 */
import { nextCursor, type EventOperations, type Problem, type ServiceClient, type TicketOperations } from '../openapi/client.js';
import type { components as EventComponents } from '../openapi/generated/event-service.js';
import type { components as TicketComponents } from '../openapi/generated/ticket-service.js';
import { count } from './words.js';

const seats = (n: number): string => count(n, 'seat');

type Hold = EventComponents['schemas']['Hold'];
type SeatLedger = EventComponents['schemas']['SeatLedger'];
type Ticket = TicketComponents['schemas']['Ticket'];
type WaitlistEntry = TicketComponents['schemas']['WaitlistEntry'];

export interface AuditReport {
  problems: string[];
  events: number;
  tickets: number;
  holds: number;
}

/** A service refused one of the audit's reads (a missing admin token, say). */
export class AuditReadRefused extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(problem.detail ?? problem.title);
    this.name = 'AuditReadRefused';
  }
}

type PageAnswer = { ok: boolean; body?: unknown; problem?: Problem; status: number; headers: Record<string, string | string[] | undefined> };

async function readAll<T>(fetchPage: (cursor: string | undefined) => Promise<PageAnswer>, what: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await fetchPage(cursor);
    if (!page.ok) {
      const problem = page.problem ?? { type: 'about:blank', title: `HTTP ${page.status}`, status: page.status };
      throw new AuditReadRefused(page.status, { ...problem, detail: `reading ${what}: ${problem.detail ?? problem.title}` });
    }
    items.push(...(page.body as T[]));
    cursor = nextCursor(page.headers);
    if (!cursor) return items;
  }
}

/** What breaks the invariant in one event's seat ledger; empty when it holds. */
export function seatLedgerProblems(ledger: SeatLedger): string[] {
  const { event_id: id, sums } = ledger;
  const problems: string[] = [];
  const expected = ledger.total_tickets - sums.held - sums.committed - sums.manual;
  if (ledger.available_tickets !== expected) {
    problems.push(
      `event ${id}: available_tickets ${ledger.available_tickets} ≠ total ${ledger.total_tickets} − HELD holds ${sums.held} − COMMITTED holds ${sums.committed} − manual adjustments ${sums.manual} = ${expected}`,
    );
  }
  if (ledger.held_tickets !== sums.held) problems.push(`event ${id}: held_tickets is ${ledger.held_tickets} but its HELD holds add up to ${sums.held}`);
  if (ledger.sold_tickets !== sums.committed) problems.push(`event ${id}: sold_tickets is ${ledger.sold_tickets} but its COMMITTED holds add up to ${sums.committed}`);
  if (ledger.manual_reserved_tickets !== sums.manual) {
    problems.push(`event ${id}: manual_reserved_tickets is ${ledger.manual_reserved_tickets} but its manual adjustments add up to ${sums.manual}`);
  }
  if (ledger.available_tickets < 0) problems.push(`event ${id}: available_tickets is negative (${ledger.available_tickets})`);
  return problems;
}

/** Every event's seat ledger, in event id order. */
export function readSeatLedgers(events: ServiceClient<EventOperations>, eventId?: number): Promise<SeatLedger[]> {
  return readAll<SeatLedger>(
    (cursor) => events.call('listSeatLedgers', { query: { limit: 1000, ...(eventId === undefined ? {} : { event_id: eventId }), ...(cursor ? { cursor } : {}) } }),
    'seat ledgers',
  );
}

/** Both checks over the whole system; `settleSeconds` applies to the cross-service one only. */
export async function auditSystem(events: ServiceClient<EventOperations>, tickets: ServiceClient<TicketOperations>, settleSeconds: number): Promise<AuditReport> {
  const problems: string[] = [];
  const settledBefore = Date.now() - settleSeconds * 1000;
  // Compared as instants: the API gives whole seconds (`…:12Z`), which as text sorts after `…:12.345Z`.
  const unsettled = (at: string) => Date.parse(at) > settledBefore;
  const readHolds = () =>
    readAll<Hold>((cursor) => events.call('listHolds', { query: { state: 'HELD,COMMITTED', older_than: settleSeconds, limit: 1000, ...(cursor ? { cursor } : {}) } }), 'holds');

  const firstHolds = await readHolds();
  const allTickets = await readAll<Ticket>((cursor) => tickets.call('listTickets', { query: { limit: 1000, ...(cursor ? { cursor } : {}) } }), 'tickets');
  const secondHolds = await readHolds();
  const ledgers = await readSeatLedgers(events);

  const first = new Map(firstHolds.map((h) => [h.hold_id, h]));
  const second = new Map(secondHolds.map((h) => [h.hold_id, h]));
  const ticketByReference = new Map(allTickets.map((t) => [t.reference, t]));

  for (const ledger of ledgers) problems.push(...seatLedgerProblems(ledger));

  const wanted: Record<string, string> = { RESERVED: 'HELD', CONFIRMED: 'COMMITTED' };
  for (const ticket of allTickets) {
    if (unsettled(ticket.updated_at)) continue;
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
          ? `ticket ${ticket.id} is ${ticket.status} (event ${ticket.event_id}, ${seats(ticket.quantity)}) but its hold is ${seen.state} (event ${seen.event_id}, ${seats(seen.quantity)})`
          : `ticket ${ticket.id} is ${ticket.status} but has no ${state} hold ${ticket.reference}`,
      );
    }
  }
  for (const hold of secondHolds) {
    if (!first.has(hold.hold_id) || unsettled(hold.updated_at)) continue;
    const ticket = ticketByReference.get(hold.hold_id);
    if (!ticket) problems.push(`hold ${hold.hold_id} (${hold.state}, event ${hold.event_id}, ${seats(hold.quantity)}) has no ticket`);
  }
  problems.push(...gateProblems(ledgers, await readAll<WaitlistEntry>((cursor) => tickets.call('listWaitlist', { query: { limit: 1000, ...(cursor ? { cursor } : {}) } }), 'the waiting list'), unsettled));
  return { problems, events: ledgers.length, tickets: allTickets.length, holds: secondHolds.length };
}

/** Each settled event's gate against the seats its WAITING entries ask for. */
function gateProblems(ledgers: SeatLedger[], entries: WaitlistEntry[], unsettled: (at: string) => boolean): string[] {
  const demand = new Map<number, number>();
  const changing = new Set<number>();
  for (const entry of entries) {
    if (entry.status === 'WAITING') demand.set(entry.event_id, (demand.get(entry.event_id) ?? 0) + entry.quantity);
    if (unsettled(entry.updated_at)) changing.add(entry.event_id);
  }
  const problems: string[] = [];
  for (const ledger of ledgers) {
    const wanted = demand.get(ledger.event_id) ?? 0;
    if (!changing.has(ledger.event_id) && ledger.waitlist_reserved_tickets !== wanted) {
      problems.push(`event ${ledger.event_id}: the waiting-list gate is ${seats(ledger.waitlist_reserved_tickets)} but its WAITING entries ask for ${seats(wanted)}`);
    }
  }
  return problems;
}
