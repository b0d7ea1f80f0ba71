import type { Migration } from 'kysely';
import type { StoreDialect } from '../../../platform/store/service-store.js';
import * as initial from './001-initial.js';
import { venueLowerIndex } from './002-venue-lower-index.js';
import * as waitlistGate from './003-waitlist-gate.js';

/** Every migration of event-service's database, by name; names sort in the order they apply. */
export const eventMigrations = (dialect: StoreDialect): Record<string, Migration> => ({
  '001-initial': initial.forDialect(dialect),
  '002-venue-lower-index': venueLowerIndex,
  '003-waitlist-gate': waitlistGate.forDialect(dialect),
});
