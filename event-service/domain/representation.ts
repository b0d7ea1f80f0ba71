/** Stored rows to the API's shapes (types generated from openapi/event-service.yaml). */
import type { components } from '../../openapi/generated/event-service.js';
import { toApiDate } from '../../platform/time.js';
import type { EventRow, HoldRow, VenueRow } from '../store/schema.js';
import type { SeatLedgerRow, WaitlistGateRow } from '../store/events.js';

export type ApiEvent = components['schemas']['Event'];
export type ApiVenue = components['schemas']['Venue'];
export type ApiHold = components['schemas']['Hold'];
export type ApiSeatLedger = components['schemas']['SeatLedger'];
export type ApiWaitlistGate = components['schemas']['WaitlistGate'];

export function toApiEvent(row: EventRow): ApiEvent {
  const taken = row.held_tickets + row.sold_tickets;
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    event_date: toApiDate(row.event_date),
    venue: row.venue,
    venue_id: row.venue_id,
    total_tickets: row.total_tickets,
    available_tickets: row.available_tickets,
    held_tickets: row.held_tickets,
    sold_tickets: row.sold_tickets,
    manual_reserved_tickets: row.manual_reserved_tickets,
    sold_ratio: row.total_tickets > 0 ? Math.min(1, Math.round((taken / row.total_tickets) * 10_000) / 10_000) : 0,
    waitlist_enabled: row.waitlist_enabled === 1,
    waitlist_reserved_tickets: row.waitlist_reserved_tickets,
    ticket_price: row.ticket_price,
    currency: row.currency,
    timezone: row.timezone,
    image_url: row.image_url,
    sales_start: toApiDate(row.sales_start),
    sales_end: toApiDate(row.sales_end),
    created_at: toApiDate(row.created_at),
    updated_at: toApiDate(row.updated_at),
  };
}

export const eventEtag = (row: EventRow): string => `"${row.version}"`;

export function toApiVenue(row: VenueRow): ApiVenue {
  return { ...row, created_at: toApiDate(row.created_at), updated_at: toApiDate(row.updated_at) };
}

export function toApiHold(row: HoldRow): ApiHold {
  return {
    ...row,
    expires_at: toApiDate(row.expires_at),
    created_at: toApiDate(row.created_at),
    updated_at: toApiDate(row.updated_at),
  };
}

export function toApiSeatLedger(row: SeatLedgerRow): ApiSeatLedger {
  return {
    event_id: row.id,
    total_tickets: row.total_tickets,
    available_tickets: row.available_tickets,
    held_tickets: row.held_tickets,
    sold_tickets: row.sold_tickets,
    manual_reserved_tickets: row.manual_reserved_tickets,
    waitlist_reserved_tickets: row.waitlist_reserved_tickets,
    waitlist_sequence: row.waitlist_sequence,
    sums: { held: row.held_in_holds, committed: row.committed_in_holds, manual: row.manual_in_adjustments },
  };
}

export function toApiWaitlistGate(gate: WaitlistGateRow, applied: boolean): ApiWaitlistGate {
  return { event_id: gate.id, waitlist_reserved_tickets: gate.waitlist_reserved_tickets, sequence: gate.waitlist_sequence, applied };
}
