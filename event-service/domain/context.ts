import type { Kysely, Transaction } from 'kysely';
import type { EventServiceConfig } from '../../platform/config.js';
import type { EventDatabase } from '../store/schema.js';

/** What the domain functions of event-service work with. */
export interface EventServiceContext {
  db: Kysely<EventDatabase>;
  config: EventServiceConfig;
  /** Runs one atomic state change; changes arriving together share a commit (platform/group-commit.ts). */
  write: <T>(work: (trx: Transaction<EventDatabase>) => Promise<T>) => Promise<T>;
}
