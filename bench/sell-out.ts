/**
 * What the sell-out race must leave behind, read through the services' APIs after the burst:
 * no event oversold, no seat held without a ticket, the event's seat ledger consistent and the
 * cross-service audit (settle 0) clean, both by the one checker in platform/audit.ts.
 */
import { auditSystem, readSeatLedgers, seatLedgerProblems } from '../platform/audit.js';
import { nextCursor, type EventOperations, type ServiceClient, type TicketOperations } from '../openapi/client.js';
import type { components as TicketComponents } from '../openapi/generated/ticket-service.js';
import type { BurstResult } from './load-worker.js';

type Ticket = TicketComponents['schemas']['Ticket'];

const MAX_PAGES = 1000;
const PROBLEMS_KEPT = 20;

export interface SellOutReport {
  seats: number;
  purchases: number;
  /** 201 answers. */
  sold: number;
  /** 409 answers. */
  refused: number;
  /** Any other status, or no answer. */
  other: number;
  statusCodes: Record<string, number>;
  networkErrors: number;
  errorSamples: string[];
  elapsedMs: number;
  purchasesPerSecond: number;
  latencyMs: BurstResult['latencyMs'];
  event: { total: number; available: number; held: number; sold: number; manual: number };
  ticketSeats: { reserved: number; confirmed: number; cancelled: number; tickets: number };
  /** The event's seat ledger passes platform/audit.ts (counters equal the sums of their rows, available ≥ 0). */
  countersConsistent: boolean;
  /** max(0, seats of RESERVED tickets − seats on sale). */
  oversold: number;
  /** (held + sold) − seats of RESERVED and CONFIRMED tickets: seats held with no ticket (negative: tickets with no seat). */
  seatsWithoutTicket: number;
  auditProblemCount: number;
  auditProblems: string[];
  auditSeconds: number;
  /** max(0, seatsWithoutTicket) + audit problems. */
  leaked: number;
}

async function ticketsOfEvent(tickets: ServiceClient<TicketOperations>, eventId: number): Promise<Ticket[]> {
  const all: Ticket[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const answer = await tickets.call('listTickets', { query: { event_id: eventId, limit: 1000, ...(cursor ? { cursor } : {}) } });
    if (!answer.ok) throw new Error(`listing the tickets of event ${eventId} answered HTTP ${answer.status}: ${answer.problem.title}`);
    all.push(...answer.body);
    cursor = nextCursor(answer.headers);
    if (cursor === undefined) return all;
  }
  throw new Error(`the tickets of event ${eventId} span more than ${MAX_PAGES} pages`);
}

export async function checkSellOut(
  events: ServiceClient<EventOperations>,
  tickets: ServiceClient<TicketOperations>,
  eventId: number,
  seats: number,
  burst: BurstResult,
): Promise<SellOutReport> {
  const sold = burst.statusCodes['201'] ?? 0;
  const refused = burst.statusCodes['409'] ?? 0;
  const other = burst.requests - sold - refused;

  const [event] = await readSeatLedgers(events, eventId);
  if (!event) throw new Error(`event ${eventId} has no seat ledger: it does not exist`);
  const list = await ticketsOfEvent(tickets, eventId);
  const seatsIn = (status: Ticket['status']) => list.filter((t) => t.status === status).reduce((sum, t) => sum + t.quantity, 0);
  const ticketSeats = { reserved: seatsIn('RESERVED'), confirmed: seatsIn('CONFIRMED'), cancelled: seatsIn('CANCELLED'), tickets: list.length };

  const countersConsistent = seatLedgerProblems(event).length === 0;
  const oversold = Math.max(0, ticketSeats.reserved - seats);
  const seatsWithoutTicket = event.held_tickets + event.sold_tickets - (ticketSeats.reserved + ticketSeats.confirmed);

  const auditStarted = performance.now();
  const audit = await auditSystem(events, tickets, 0);
  const auditSeconds = (performance.now() - auditStarted) / 1000;

  return {
    seats,
    purchases: burst.requests,
    sold,
    refused,
    other,
    statusCodes: burst.statusCodes,
    networkErrors: burst.networkErrors,
    errorSamples: burst.errorSamples,
    elapsedMs: burst.elapsedMs,
    purchasesPerSecond: burst.requests / (burst.elapsedMs / 1000),
    latencyMs: burst.latencyMs,
    event: {
      total: event.total_tickets,
      available: event.available_tickets,
      held: event.held_tickets,
      sold: event.sold_tickets,
      manual: event.manual_reserved_tickets,
    },
    ticketSeats,
    countersConsistent,
    oversold,
    seatsWithoutTicket,
    auditProblemCount: audit.problems.length,
    auditProblems: audit.problems.slice(0, PROBLEMS_KEPT),
    auditSeconds,
    leaked: Math.max(0, seatsWithoutTicket) + audit.problems.length,
  };
}
