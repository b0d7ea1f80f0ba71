import type { Kysely, Transaction } from 'kysely';
import type { EventServiceConfig } from '../../platform/config.js';
import type { EventDatabase } from '../store/schema.js';
import type { ReadCache } from '../../platform/read-cache.js';
import type { ApiEvent } from './representation.js';

/** What the domain functions of event-service work with. */
export interface EventServiceContext {
  db: Kysely<EventDatabase>;
  config: EventServiceConfig;
  /** Runs one atomic state change; changes arriving together share a commit (platform/group-commit.ts). */
  write: <T>(work: (trx: Transaction<EventDatabase>) => Promise<T>) => Promise<T>;
  /**
   * Which events make up a text search page, and how many match: stale only when an event is
   * created, changed or deleted (not when seats move), so those writes go through its `change`.
   */
  searchPages: ReadCache<{ ids: number[]; total: number }>;
  /** Whole answers to text searches (in the API's shape): stale after any write, so every `write` goes through its `change`. */
  searchAnswers: ReadCache<{ status: 200; body: ApiEvent[]; headers: Record<string, string> }>;
}
