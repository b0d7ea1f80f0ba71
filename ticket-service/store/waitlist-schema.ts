/** Row shapes of the waiting list (migration 004). */
import type { Generated, Selectable } from 'kysely';

/** OFFERING is internal: the offer's hold is being asked for (shown as WAITING). */
export type WaitlistStatus = 'WAITING' | 'OFFERING' | 'OFFERED' | 'CONFIRMED' | 'DECLINED' | 'EXPIRED' | 'LEFT' | 'CLOSED';

export interface WaitlistEntryTable {
  id: Generated<number>;
  event_id: number;
  customer_name: string;
  customer_email: string;
  quantity: number;
  status: WaitlistStatus;
  /** The entry's own secret (X-Ticket-Reference). */
  reference: string;
  /** The reference (hold id) of the current or last offer; claimed in claimed_references. */
  offer_reference: string | null;
  ticket_id: number | null;
  offer_expires_at: string | null;
  created_at: string;
  updated_at: string;
}

/** The seats an event's list asks for (Σ quantity of WAITING and OFFERING), as ticket-service owns it. */
export interface WaitlistGateTable {
  event_id: number;
  reserved: number;
  /** Grows with every change; event-service ignores an older value. */
  sequence: number;
  /** The highest sequence event-service acknowledged. */
  sent_sequence: number;
  updated_at: string;
}

export type WaitlistEntryRow = Selectable<WaitlistEntryTable>;
export type WaitlistGateRow = Selectable<WaitlistGateTable>;
