import type { Migration } from 'kysely';
import * as initial from './001-initial.js';

/** Every migration of event_data.db, by name; names sort in the order they apply. */
export const eventMigrations: Record<string, Migration> = {
  '001-initial': initial,
};
