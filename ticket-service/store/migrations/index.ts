import type { Migration } from 'kysely';
import type { StoreDialect } from '../../../platform/store/service-store.js';
import * as initial from './001-initial.js';
import * as claimedReferences from './002-claimed-references.js';
import * as webhooks from './003-webhooks.js';
import * as waitlist from './004-waitlist.js';
import * as releaseEvent from './005-release-event.js';
import * as confirmingIndex from './006-confirming-index.js';

/** Every migration of ticket_data.db, by name; names sort in the order they apply. */
export const ticketMigrations = (dialect: StoreDialect): Record<string, Migration> => ({
  '001-initial': initial.forDialect(dialect),
  '002-claimed-references': claimedReferences.migration,
  '003-webhooks': webhooks.forDialect(dialect),
  '004-waitlist': waitlist.forDialect(dialect),
  '005-release-event': releaseEvent.migration,
  '006-confirming-index': confirmingIndex.migration,
});
