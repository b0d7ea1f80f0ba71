import type { Migration } from 'kysely';
import * as initial from './001-initial.js';

/** Every migration of ticket_data.db, by name; names sort in the order they apply. */
export const ticketMigrations: Record<string, Migration> = {
  '001-initial': initial,
};
