import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The case-insensitive venue filter as `lower(venue) = lower(?)` over an index on `lower(venue)`, a
 * form both engines accept, instead of SQLite's `COLLATE NOCASE` (both fold ASCII letters on SQLite).
 */
export const venueLowerIndex: Migration = {
  up: async (db: Kysely<unknown>) => {
    await sql`DROP INDEX IF EXISTS events_venue_nocase`.execute(db);
    await sql`CREATE INDEX events_venue_lower ON events (lower(venue), event_date)`.execute(db);
  },
  down: async (db: Kysely<unknown>) => {
    await sql`DROP INDEX IF EXISTS events_venue_lower`.execute(db);
  },
};
