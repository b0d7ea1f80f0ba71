import type { Kysely } from 'kysely';
import type { EventServiceConfig } from '../../platform/config.js';
import type { EventDatabase } from '../store/schema.js';

/** What the domain functions of event-service work with. */
export interface EventServiceContext {
  db: Kysely<EventDatabase>;
  config: EventServiceConfig;
}
