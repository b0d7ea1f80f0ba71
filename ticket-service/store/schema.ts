/** Row shapes of ticket_data.db. Timestamps are ISO strings with milliseconds (sortable). */
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';
import type { WaitlistEntryTable, WaitlistGateTable } from './waitlist-schema.js';
import type { WebhookDeliveryTable, WebhookEventTable, WebhookSubscriptionTable } from './webhooks-schema.js';

/** PENDING and ABANDONED are internal: a ticket before its hold exists, and one the reconciler gave up. */
export type TicketStatus = 'PENDING' | 'RESERVED' | 'CONFIRMED' | 'CANCELLED' | 'ABANDONED';
export type CancellationReason = 'customer' | 'expired' | 'event_deleted' | 'admin';

export interface TicketTable {
  id: Generated<number>;
  event_id: number;
  customer_name: string;
  customer_email: string;
  quantity: number;
  unit_price: number | null;
  total_price: number | null;
  currency: string | null;
  status: TicketStatus;
  /** The hold id at event-service. */
  reference: string;
  expires_at: string | null;
  cancellation_reason: CancellationReason | null;
  payment_reference: string | null;
  /** When a confirm started committing the hold; lets the reconciler finish a confirm that crashed. */
  confirming_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface IdempotencyKeyTable {
  key: string;
  body_hash: string;
  ticket_id: number | null;
  /** Stored answer (201 or 4xx); null while the first request is in flight or after a 5xx. */
  status_code: number | null;
  response_body: string | null;
  /** A duplicate arriving before this time finds the first request still in flight. */
  locked_until: string;
  created_at: string;
  expires_at: string;
}

export interface OutboxTable {
  id: Generated<number>;
  hold_id: string;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  created_at: string;
  /** The event of the released hold, where the queuing side knew it (the waiting-list gate rides on the release). */
  event_id: ColumnType<number | null, number | null | undefined, never>;
}

/** Who owns a reference: a ticket written with it, or the reconciler releasing its orphan hold. */
export type Claimant = 'ticket' | 'reconciler';

/** A reference (hold id) once claimed is never claimed again: the first insert wins. */
export interface ClaimedReferenceTable {
  reference: string;
  claimant: Claimant;
  claimed_at: string;
}

export interface TicketDatabase {
  tickets: TicketTable;
  idempotency_keys: IdempotencyKeyTable;
  release_outbox: OutboxTable;
  claimed_references: ClaimedReferenceTable;
  webhook_subscriptions: WebhookSubscriptionTable;
  webhook_events: WebhookEventTable;
  webhook_deliveries: WebhookDeliveryTable;
  waitlist_entries: WaitlistEntryTable;
  waitlist_gates: WaitlistGateTable;
}

export type TicketRow = Selectable<TicketTable>;
export type NewTicketRow = Insertable<TicketTable>;
export type IdempotencyRow = Selectable<IdempotencyKeyTable>;
export type OutboxRow = Selectable<OutboxTable>;
