import type { Kysely, Transaction } from 'kysely';
import type { EventServiceConfig } from '../../platform/config.js';
import type { Page } from '../../platform/pagination.js';
import type { EventDatabase, EventRow } from '../store/schema.js';
import type { ReadCache } from '../../platform/read-cache.js';
import type { TextSearch } from '../store/search.js';
import type { HeldHoldCreator } from '../store/holds.js';

/** What the domain functions of event-service work with. */
export interface EventServiceContext {
  db: Kysely<EventDatabase>;
  config: EventServiceConfig;
  /** Free-text search in the engine's own way (FTS5 or tsvector), chosen at start-up. */
  search: TextSearch;
  /** Runs one atomic state change; changes arriving together share a commit (platform/store/sqlite/group-commit.ts). */
  write: <T>(work: (trx: Transaction<EventDatabase>) => Promise<T>) => Promise<T>;
  /** Inserts a HELD hold and takes its seats, as one atomic change in the engine's own way (chosen at start-up). */
  createHeldHold: HeldHoldCreator;
  /**
   * Text searches, cached in two layers by domain/events.ts `listEvents` only. This one: which
   * events make up a page, and how many match; stale only when an event is created, changed or
   * deleted (not when seats move), so those writes go through its `change`.
   */
  searchPages: ReadCache<{ ids: number[]; total: number }>;
  /** And whole pages: stale after any write (every hold moves a seat counter), so every `write` goes through its `change`. */
  searchResults: ReadCache<Page<EventRow>>;
}
