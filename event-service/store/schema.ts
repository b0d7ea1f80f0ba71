/** Row shapes of event_data.db, as kysely sees them. Timestamps are ISO strings with milliseconds (sortable). */
import type { Generated, Insertable, Selectable } from 'kysely';

export interface VenueTable {
  id: Generated<number>;
  name: string;
  address: string;
  city: string;
  capacity: number;
  description: string;
  created_at: string;
  updated_at: string;
}

export interface EventTable {
  id: Generated<number>;
  name: string;
  description: string;
  event_date: string;
  venue: string;
  venue_id: number | null;
  total_tickets: number;
  available_tickets: number;
  held_tickets: Generated<number>;
  sold_tickets: Generated<number>;
  manual_reserved_tickets: Generated<number>;
  /** The waiting-list gate: seats public holds may not take (not a seat count; it moves no seats). */
  waitlist_reserved_tickets: Generated<number>;
  /** The sequence of the last gate value applied; only grows. */
  waitlist_sequence: Generated<number>;
  /** 1 or 0 (a boolean in the API). */
  waitlist_enabled: Generated<number>;
  ticket_price: number;
  currency: string;
  timezone: string;
  image_url: string | null;
  sales_start: string | null;
  sales_end: string | null;
  created_at: string;
  updated_at: string;
  version: Generated<number>;
}

export type HoldState = 'HELD' | 'COMMITTED' | 'RELEASED' | 'EXPIRED';

export interface HoldTable {
  hold_id: string;
  /** Null only for the tombstone of a release that named an unknown hold. */
  event_id: number | null;
  quantity: number;
  state: HoldState;
  expires_at: string;
  unit_price: number | null;
  currency: string | null;
  created_at: string;
  updated_at: string;
}

export interface ManualAdjustmentTable {
  id: Generated<number>;
  event_id: number;
  /** Seats taken (+) or given back (−) by `PUT /events/{id}/tickets`. */
  delta: number;
  created_at: string;
}

export interface EventDatabase {
  venues: VenueTable;
  events: EventTable;
  holds: HoldTable;
  manual_adjustments: ManualAdjustmentTable;
}

export type VenueRow = Selectable<VenueTable>;
export type EventRow = Selectable<EventTable>;
export type NewEventRow = Insertable<EventTable>;
export type HoldRow = Selectable<HoldTable>;
