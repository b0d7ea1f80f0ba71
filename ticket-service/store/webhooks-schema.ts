/** Row shapes of the webhook tables (migration 003-webhooks). Timestamps are ISO strings with milliseconds. */
import type { Generated, Selectable } from 'kysely';

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface WebhookSubscriptionTable {
  id: Generated<number>;
  url: string;
  /** JSON array of event types, or `["*"]`. */
  events: string;
  description: string | null;
  /** 1 or 0 (an integer on both engines). */
  enabled: number;
  /** `failing` when the dispatcher disabled it; null otherwise. */
  disabled_reason: string | null;
  secret: string;
  /** The secret before the last rotation, signing beside the new one until `previous_secret_until`. */
  previous_secret: string | null;
  previous_secret_until: string | null;
  /** A temporary subscription (`eventsync webhooks listen`) is removed once past it. */
  expires_at: string | null;
  /** Since when every attempt to this endpoint failed; null after a success. */
  failing_since: string | null;
  created_at: string;
  updated_at: string;
}

/** The transactional outbox: one row per change, written in the change's own transaction. */
export interface WebhookEventTable {
  id: Generated<number>;
  type: string;
  /** The `webhook-id` of every delivery of this event. */
  message_id: string;
  ticket_id: number | null;
  /** The exact body sent: `{"type", "timestamp", "data"}`. */
  payload: string;
  /** 0 until the dispatcher made its deliveries. */
  fanned_out: number;
  created_at: string;
}

export interface WebhookDeliveryTable {
  id: Generated<number>;
  event_id: number;
  subscription_id: number;
  status: WebhookDeliveryStatus;
  attempts: number;
  next_attempt_at: string;
  /** Set while a dispatcher has claimed the delivery for an attempt; a lapsed lease makes it claimable again. */
  lease_until: string | null;
  /** Retried until then; past it a failed attempt makes the delivery `failed`. */
  retry_until: string;
  /** The first attempt of the current retry window (a manual retry starts a new one). */
  first_attempt_at: string | null;
  last_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  response_excerpt: string | null;
  created_at: string;
  updated_at: string;
}

export type WebhookSubscriptionRow = Selectable<WebhookSubscriptionTable>;
export type WebhookEventRow = Selectable<WebhookEventTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveryTable>;
