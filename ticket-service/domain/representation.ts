/** Stored tickets to the API's shape (types generated from openapi/ticket-service.yaml). */
import type { components } from '../../openapi/generated/ticket-service.js';
import { toApiDate } from '../../platform/time.js';
import type { TicketRow } from '../store/schema.js';
import type { EventSummary } from './event-summaries.js';

export type ApiTicket = components['schemas']['Ticket'];
export type PublicStatus = ApiTicket['status'];

export function toApiTicket(row: TicketRow, event: EventSummary | undefined): ApiTicket {
  const ticket: ApiTicket = {
    id: row.id,
    event_id: row.event_id,
    customer_name: row.customer_name,
    customer_email: row.customer_email,
    quantity: row.quantity,
    unit_price: row.unit_price ?? 0,
    total_price: row.total_price ?? 0,
    currency: row.currency ?? 'XXX',
    status: row.status as PublicStatus,
    reference: row.reference,
    expires_at: row.status === 'RESERVED' ? toApiDate(row.expires_at) : null,
    cancellation_reason: row.cancellation_reason,
    payment_reference: row.payment_reference,
    created_at: toApiDate(row.created_at),
    updated_at: toApiDate(row.updated_at),
  };
  if (event) ticket.event = event;
  return ticket;
}
